package wire

import (
	"bytes"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Annotations are a tool's behaviour hints that the server set explicitly
// to true. A hint left out, false, or given any default by the
// specification is false here: policy acts on what a server says, never on
// what it might mean by saying nothing.
type Annotations struct {
	DestructiveHint bool
	ReadOnlyHint    bool
	IdempotentHint  bool
	OpenWorldHint   bool
}

// Hint returns the hint named as in the schema ("destructiveHint", ...),
// and whether that is a hint's name at all.
func (a Annotations) Hint(name string) (value, known bool) {
	switch name {
	case "destructiveHint":
		return a.DestructiveHint, true
	case "readOnlyHint":
		return a.ReadOnlyHint, true
	case "idempotentHint":
		return a.IdempotentHint, true
	case "openWorldHint":
		return a.OpenWorldHint, true
	}
	return false, false
}

// ToolDef is one tool of a tools/list result.
type ToolDef struct {
	Name        string
	Annotations Annotations
	Raw         jsontext.Value // the tool's definition, exactly as sent
}

// ToolsList is a tools/list result as ParseToolsList read it.
type ToolsList struct {
	Tools         []ToolDef
	NextCursor    string // the pagination cursor (HasNextCursor says whether there was one)
	HasNextCursor bool
	TTLMs         int64  // 2026-07-28 cache freshness hint; -1 when absent
	CacheScope    string // 2026-07-28 "public" or "private"; "" when absent
	ResultType    string // as sent; "" when absent (read it as "complete")

	raw   jsontext.Value
	tools span // the tools array in raw
}

var listNames = []string{"tools", "nextCursor", "ttlMs", "cacheScope", "resultType", "_meta"}

var toolNames = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations", "icons", "_meta", "execution"}

var hintNames = []string{"destructiveHint", "readOnlyHint", "idempotentHint", "openWorldHint", "title"}

// ParseToolsList reads the result of a tools/list response strictly, by
// the rules of Parse, and refuses a list whose tools a lenient client could
// read under other names: a tool without a string name, a name with
// escapes or not in NFC, a field such as "Name" or "destructivehint" that
// encoding/json would match to the real one, one name listed twice.
func ParseToolsList(result jsontext.Value) (ToolsList, error) {
	tl := ToolsList{TTLMs: -1, raw: result}
	p := newParser(result, Limits{}.withDefaults())
	defer p.release()
	tok, sp, err := p.token()
	if err != nil {
		return ToolsList{}, err
	}
	if tok.Kind() != '{' {
		return ToolsList{}, badList(sp.start, "the result is not an object")
	}
	seenTools := false
	_, err = p.object(sp, 1, func(name []byte) (bool, error) {
		switch string(name) {
		case "tools":
			seenTools = true
			return true, p.toolsArray(&tl)
		case "nextCursor", "cacheScope", "resultType":
			tok, sp, err := p.token()
			if err != nil {
				return true, err
			}
			if tok.Kind() != '"' {
				return true, badList(sp.start, "%s is not a string", name)
			}
			switch s := tok.String(); string(name) {
			case "nextCursor":
				tl.NextCursor, tl.HasNextCursor = s, true
			case "cacheScope":
				tl.CacheScope = s
			default:
				tl.ResultType = s
			}
		case "ttlMs":
			tok, sp, err := p.token()
			if err != nil {
				return true, err
			}
			n, err := strconv.ParseInt(string(p.src[sp.start:sp.end]), 10, 64)
			if tok.Kind() != '0' || err != nil || n < 0 {
				return true, badList(sp.start, "ttlMs is not a non-negative integer")
			}
			tl.TTLMs = n
		default:
			return false, caseVariantErr(caseVariant(name, listNames...))
		}
		return true, nil
	})
	if err == nil {
		err = p.end()
	}
	if err == nil && !seenTools {
		err = badList(0, "no tools member")
	}
	if err != nil {
		return ToolsList{}, err
	}
	return tl, nil
}

func (p *parser) toolsArray(tl *ToolsList) error {
	tok, sp, err := p.token()
	if err != nil {
		return err
	}
	if tok.Kind() != '[' {
		return badList(sp.start, "tools is not an array")
	}
	seen := map[string]struct{}{}
	for p.dec.PeekKind() != ']' {
		tok, tsp, err := p.token()
		if err != nil {
			return err
		}
		if tok.Kind() != '{' {
			return badList(tsp.start, "a tool that is not an object")
		}
		var t ToolDef
		named := false
		osp, err := p.object(tsp, 3, func(name []byte) (bool, error) {
			switch string(name) {
			case "name":
				tok, sp, err := p.token()
				if err != nil {
					return true, err
				}
				if tok.Kind() != '"' {
					return true, badList(sp.start, "a tool name that is not a string")
				}
				t.Name, err = p.checkName(tok, sp, "tool name", noEscapes)
				named = true
				return true, err
			case "annotations":
				return true, p.annotations(&t.Annotations)
			}
			return false, caseVariantErr(caseVariant(name, toolNames...))
		})
		if err != nil {
			return err
		}
		if !named {
			return badList(tsp.start, "a tool without a name")
		}
		if _, dup := seen[t.Name]; dup {
			// Which definition would the client keep, and which would be
			// pinned? Neither is knowable.
			return badList(tsp.start, "tool %q listed twice", t.Name)
		}
		seen[t.Name] = struct{}{}
		t.Raw = p.src[osp.start:osp.end]
		tl.Tools = append(tl.Tools, t)
	}
	_, end, err := p.token()
	tl.tools = span{sp.start, end.end}
	return err
}

func (p *parser) annotations(a *Annotations) error {
	tok, sp, err := p.token()
	if err != nil {
		return err
	}
	if tok.Kind() != '{' {
		return badList(sp.start, "annotations is not an object")
	}
	_, err = p.object(sp, 4, func(name []byte) (bool, error) {
		var hint *bool
		switch string(name) {
		case "destructiveHint":
			hint = &a.DestructiveHint
		case "readOnlyHint":
			hint = &a.ReadOnlyHint
		case "idempotentHint":
			hint = &a.IdempotentHint
		case "openWorldHint":
			hint = &a.OpenWorldHint
		default:
			return false, caseVariantErr(caseVariant(name, hintNames...))
		}
		tok, sp, err := p.token()
		if err != nil {
			return true, err
		}
		if k := tok.Kind(); k != 't' && k != 'f' {
			return true, badList(sp.start, "%s is not a boolean", name)
		}
		*hint = tok.Kind() == 't'
		return true, nil
	})
	return err
}

func badList(offset int, format string, args ...any) *ParseError {
	return refuse(ReasonBadToolsList, CodeInternalError, offset, format, args...)
}

// caseVariantErr keeps a nil *ParseError from becoming a non-nil error.
func caseVariantErr(e *ParseError) error {
	if e == nil {
		return nil
	}
	return e
}

// Filter returns the result with only the tools keep accepts, in their
// order and bytes; every other member (nextCursor, ttlMs, _meta, ...) is
// left byte for byte as it was. With every tool kept it returns the
// result itself.
func (tl ToolsList) Filter(keep func(name string) bool) jsontext.Value {
	kept := make([]jsontext.Value, 0, len(tl.Tools))
	for _, t := range tl.Tools {
		if keep(t.Name) {
			kept = append(kept, t.Raw)
		}
	}
	if len(kept) == len(tl.Tools) {
		return tl.raw
	}
	out := make([]byte, 0, len(tl.raw))
	out = append(out, tl.raw[:tl.tools.start]...)
	out = append(out, '[')
	out = append(out, bytes.Join(toBytes(kept), []byte{','})...)
	out = append(out, ']')
	return append(out, tl.raw[tl.tools.end:]...)
}

func toBytes(vs []jsontext.Value) [][]byte {
	out := make([][]byte, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
