package mcp

import (
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Small readers of values the codec has already checked: what the guard
// needs to know of an answer (isError, an error's code, the negotiated
// version, serverInfo) without decoding it whole. They read through the
// codec's own Lookup.

func memberString(v jsontext.Value, pointer string) string {
	if got, ok := Lookup(v, pointer); ok && got.Kind == ValueString {
		return got.Text
	}
	return ""
}

func isErrorResult(res jsontext.Value) bool {
	got, ok := Lookup(res, "/isError")
	return ok && got.Kind == ValueBool && got.Text == "true"
}

func errorCode(e jsontext.Value) int {
	got, ok := Lookup(e, "/code")
	if !ok || got.Kind != ValueNumber {
		return 0
	}
	n, _ := strconv.Atoi(got.Text)
	return n
}

func protocolVersion(res jsontext.Value) string { return memberString(res, "/protocolVersion") }

func serverName(res jsontext.Value) (name, version string) {
	return memberString(res, "/serverInfo/name"), memberString(res, "/serverInfo/version")
}

// metaRevision is the protocol version a 2026-07-28 body names in the
// first message's _meta (the pointer escapes the "/" in the key).
func metaRevision(b Body) string {
	for _, m := range b.Messages {
		if v := memberString(m.Meta, "/io.modelcontextprotocol~1protocolVersion"); v != "" {
			return v
		}
	}
	return ""
}
