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

// resultFacts are the members of a result the guard reads on every
// answer, found in one pass over its top level rather than one pass each.
type resultFacts struct {
	isError    bool
	resultType string // "complete" when absent, "" when not a string
	task       jsontext.Value
}

func factsOf(res jsontext.Value) resultFacts {
	f := resultFacts{resultType: "complete"}
	got := topMembers(res, "isError", "resultType", "task")
	if got[0] != nil {
		v, ok := toValue(got[0])
		f.isError = ok && v.Kind == ValueBool && v.Text == "true"
	}
	if got[1] != nil {
		f.resultType = ""
		if v, ok := toValue(got[1]); ok && v.Kind == ValueString {
			f.resultType = v.Text
		}
	}
	f.task = got[2]
	return f
}
