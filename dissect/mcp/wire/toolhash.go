package wire

import (
	"bytes"
	"crypto/sha256"

	"github.com/go-json-experiment/json/jsontext"
)

// toolhash.go: the hash a tool definition is pinned by.
//
// Version 2 (ToolHash) hashes the whole definition: every member, _meta,
// icons and execution included, since a change to any of them (a UI
// resource URI in _meta, say) is a change the client acts on. Version 1
// (toolHashV1) hashed six members only; it is kept to recognise the pins
// an older agentg wrote, which are migrated, not flagged (rewrite.go,
// migratePin).

const (
	toolHashPrefix   = "agentg tool v2\n"
	toolHashV1Prefix = "agentg tool v1\n"
)

// ToolHash is the SHA-256 of a whole tool definition in RFC 8785
// canonical JSON (members sorted by their UTF-16 code units at every
// depth, strings in one escaping, floating-point numbers in one spelling;
// integers as written, so no large integer is rounded into another).
// Reordered members, whitespace or another escaping of the same text give
// the same hash; any changed, added or removed member, at any depth,
// another. A definition that is not a valid JSON object (duplicate names,
// invalid UTF-8) hashes its raw bytes, so it still differs from every
// valid one.
func ToolHash(tool jsontext.Value) [32]byte {
	v := tool.Clone()
	if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false)); err != nil || len(v) == 0 || v[0] != '{' {
		return sha256.Sum256(append([]byte("agentg tool v2 invalid\n"), tool...))
	}
	return sha256.Sum256(append([]byte(toolHashPrefix), v...))
}

// hashedNamesV1 are the members version 1 hashed, in the sorted order its
// canonical form wrote them.
var hashedNamesV1 = []string{"annotations", "description", "inputSchema", "name", "outputSchema", "title"}

// toolHashV1 is the hash agentg pinned tools by before version 2: name,
// title, description, input and output schemas and annotations only.
func ToolHashV1(tool jsontext.Value) [32]byte {
	members := make(map[string]jsontext.Value, len(hashedNamesV1))
	d := jsontext.NewDecoder(bytes.NewBuffer(tool))
	invalid := func() [32]byte {
		return sha256.Sum256(append([]byte("agentg tool v1 invalid\n"), tool...))
	}
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return invalid()
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return invalid()
		}
		n := name.String()
		v, err := d.ReadValue()
		if err != nil {
			return invalid()
		}
		members[n] = v.Clone()
	}
	if _, err := d.ReadToken(); err != nil {
		return invalid()
	}
	b := []byte(toolHashV1Prefix + "{")
	first := true
	for _, n := range hashedNamesV1 {
		v, ok := members[n]
		if !ok {
			continue
		}
		if err := v.Canonicalize(jsontext.CanonicalizeRawInts(false)); err != nil {
			return invalid()
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(append(append(b, '"'), n...), `":`...)
		b = append(b, v...)
	}
	return sha256.Sum256(append(b, '}'))
}
