package wire

import (
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Small readers of values the codec has already checked: what the guard
// needs to know of an answer (isError, an error's code, the negotiated
// version, serverInfo) without decoding it whole. They read through the
// codec's own Lookup.

func MemberString(v jsontext.Value, pointer string) string {
	if got, ok := Lookup(v, pointer); ok && got.Kind == ValueString {
		return got.Text
	}
	return ""
}

func ErrorCode(e jsontext.Value) int {
	got, ok := Lookup(e, "/code")
	if !ok || got.Kind != ValueNumber {
		return 0
	}
	n, _ := strconv.Atoi(got.Text)
	return n
}

func ProtocolVersion(res jsontext.Value) string { return MemberString(res, "/protocolVersion") }

func ServerName(res jsontext.Value) (name, version string) {
	return MemberString(res, "/serverInfo/name"), MemberString(res, "/serverInfo/version")
}

// metaRevision is the protocol version a 2026-07-28 body names in the
// first message's _meta (the pointer escapes the "/" in the key).
func MetaRevision(b Body) string {
	for _, m := range b.Messages {
		if v := MemberString(m.Meta, "/io.modelcontextprotocol~1protocolVersion"); v != "" {
			return v
		}
	}
	return ""
}

// resultFacts are the members of a result the guard reads on every
// answer, found in one pass over its top level rather than one pass each.
type ResultFacts struct {
	IsError    bool
	ResultType string // "complete" when absent, "" when not a string
	Task       jsontext.Value
}

func FactsOf(res jsontext.Value) ResultFacts {
	f := ResultFacts{ResultType: "complete"}
	got := topMembers(res, "isError", "resultType", "task")
	if got[0] != nil {
		v, ok := toValue(got[0])
		f.IsError = ok && v.Kind == ValueBool && v.Text == "true"
	}
	if got[1] != nil {
		f.ResultType = ""
		if v, ok := toValue(got[1]); ok && v.Kind == ValueString {
			f.ResultType = v.Text
		}
	}
	f.Task = got[2]
	return f
}
