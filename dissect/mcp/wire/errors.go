package wire

import (
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// JSON-RPC error codes agentg answers with.
const (
	CodeParseError     = -32700 // the body is not JSON a server would read the same way
	CodeInvalidRequest = -32600 // JSON, but not a JSON-RPC request MCP allows
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602 // the method's params are missing or malformed
	CodeInternalError  = -32603
	// CodeDenied answers a call the policy denied (mcp.deny_as: error),
	// in the range JSON-RPC leaves to implementations.
	CodeDenied = -32001
	// CodeHeaderMismatch answers a 2026-07-28 request whose Mcp-Method,
	// Mcp-Name or Mcp-Param-* headers disagree with its body.
	CodeHeaderMismatch = -32020
)

// ErrorResponse encodes a JSON-RPC error response for the request whose id
// token is id, kept byte for byte so the client matches it to its own
// request ("1" stays a string, 1 a number). A nil or malformed id is
// written as null, as JSON-RPC asks when the id could not be read. data,
// if not nil, is a jsontext.Value written as it is (when valid) or a Go
// value marshalled with sorted map keys; if it cannot be encoded it is
// left out rather than losing the error.
func ErrorResponse(id jsontext.Value, code int, message string, data any) []byte {
	b := make([]byte, 0, 64+len(id)+len(message))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = appendID(b, id)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	if d := EncodeData(data); d != nil {
		b = append(b, `,"data":`...)
		b = append(b, d...)
	}
	return append(b, "}}"...)
}

// ToolErrorResult encodes the answer to a denied tools/call under
// mcp.deny_as: result: a successful response carrying a CallToolResult
// with isError true and text as its one text content item, which the
// model reads as the tool's own failure. meta, if given and a JSON object,
// becomes the result's _meta. The result carries resultType "complete",
// which 2026-07-28 requires and earlier revisions' Result allows as an
// extra member.
func ToolErrorResult(id jsontext.Value, text string, meta ...jsontext.Value) []byte {
	b := make([]byte, 0, 128+len(id)+len(text))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = appendID(b, id)
	b = append(b, `,"result":{"content":[{"type":"text","text":`...)
	b = AppendString(b, text)
	b = append(b, `}],"isError":true,"resultType":"complete"`...)
	for _, m := range meta {
		if m.Kind() == '{' && m.IsValid() {
			b = append(b, `,"_meta":`...)
			b = append(b, m...)
			break
		}
	}
	return append(b, "}}"...)
}

func appendID(b []byte, id jsontext.Value) []byte {
	switch id.Kind() {
	case '"', '0':
		if id.IsValid() {
			return append(b, id...)
		}
	}
	return append(b, "null"...)
}

// appendString quotes s as JSON. Invalid UTF-8 comes out as U+FFFD: the
// message is ours, and an error response must not fail to be written.
func AppendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

func EncodeData(data any) []byte {
	switch d := data.(type) {
	case nil:
		return nil
	case jsontext.Value:
		if d.IsValid() {
			return d
		}
		return nil
	}
	b, err := json.Marshal(data, json.Deterministic(true))
	if err != nil {
		return nil
	}
	return b
}
