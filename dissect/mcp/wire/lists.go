package wire

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"
)

// The prompts/list, resources/list and resources/templates/list results:
// read strictly, like tools/list, so that the list the guard filters is
// the list the client will read, and filtered by the same decision as
// prompts/get and resources/read.

// ListKind names one of the lists NamedList reads.
type ListKind uint8

const (
	ListPrompts   ListKind = iota + 1 // prompts/list: prompts[].name
	ListResources                     // resources/list: resources[].uri
	ListTemplates                     // resources/templates/list: resourceTemplates[].uriTemplate
)

type listShape struct {
	array, key string
	rule       nameRule
	members    []string // the list result's members
	item       []string // an item's members
}

var listShapes = map[ListKind]listShape{
	ListPrompts: {"prompts", "name", noEscapes,
		[]string{"prompts", "nextCursor", "ttlMs", "cacheScope", "resultType", "_meta"},
		[]string{"name", "title", "description", "arguments", "icons", "_meta"}},
	ListResources: {"resources", "uri", noUEscapes,
		[]string{"resources", "nextCursor", "ttlMs", "cacheScope", "resultType", "_meta"},
		[]string{"uri", "name", "title", "description", "mimeType", "annotations", "size", "icons", "_meta"}},
	ListTemplates: {"resourceTemplates", "uriTemplate", noUEscapes,
		[]string{"resourceTemplates", "nextCursor", "ttlMs", "cacheScope", "resultType", "_meta"},
		[]string{"uriTemplate", "name", "title", "description", "mimeType", "annotations", "icons", "_meta"}},
}

// ListKindOf is the list a method's result is, or 0.
func ListKindOf(method string) ListKind {
	switch method {
	case "prompts/list":
		return ListPrompts
	case "resources/list":
		return ListResources
	case "resources/templates/list":
		return ListTemplates
	}
	return 0
}

// NamedList is a prompts, resources or resource templates list as
// ParseNamedList read it.
type NamedList struct {
	// Keys are each item's name (prompts), uri (resources) or
	// uriTemplate (templates), decoded, in order.
	Keys  []string
	items []jsontext.Value
	raw   jsontext.Value
	arr   span
}

// ParseNamedList reads a list result of kind strictly, by the rules of
// Parse: an item without its key as a string, a key with escapes (a URI
// may carry encoding/json's HTML escapes) or not in NFC, or a member such
// as "Name" or "URI" that encoding/json would match to the real one, is
// refused.
func ParseNamedList(result jsontext.Value, kind ListKind) (NamedList, error) {
	sh, ok := listShapes[kind]
	if !ok {
		return NamedList{}, badList(0, "not a list kind")
	}
	nl := NamedList{raw: result}
	p := newParser(result, Limits{}.withDefaults())
	defer p.release()
	tok, sp, err := p.token()
	if err != nil {
		return NamedList{}, err
	}
	if tok.Kind() != '{' {
		return NamedList{}, badList(sp.start, "the result is not an object")
	}
	seen := false
	_, err = p.object(sp, 1, func(name []byte) (bool, error) {
		if string(name) == sh.array {
			seen = true
			return true, p.namedArray(&nl, sh)
		}
		return false, caseVariantErr(caseVariant(name, sh.members...))
	})
	if err == nil {
		err = p.end()
	}
	if err == nil && !seen {
		err = badList(0, "no %s member", sh.array)
	}
	if err != nil {
		return NamedList{}, err
	}
	return nl, nil
}

func (p *parser) namedArray(nl *NamedList, sh listShape) error {
	tok, sp, err := p.token()
	if err != nil {
		return err
	}
	if tok.Kind() != '[' {
		return badList(sp.start, "%s is not an array", sh.array)
	}
	for p.dec.PeekKind() != ']' {
		tok, isp, err := p.token()
		if err != nil {
			return err
		}
		if tok.Kind() != '{' {
			return badList(isp.start, "an item of %s that is not an object", sh.array)
		}
		key, keyed := "", false
		osp, err := p.object(isp, 3, func(name []byte) (bool, error) {
			if string(name) != sh.key {
				return false, caseVariantErr(caseVariant(name, sh.item...))
			}
			tok, ksp, err := p.token()
			if err != nil {
				return true, err
			}
			if tok.Kind() != '"' {
				return true, badList(ksp.start, "an item's %s that is not a string", sh.key)
			}
			key, err = p.checkName(tok, ksp, sh.key, sh.rule)
			keyed = true
			return true, err
		})
		if err != nil {
			return err
		}
		if !keyed {
			return badList(isp.start, "an item of %s without a %s", sh.array, sh.key)
		}
		nl.Keys = append(nl.Keys, key)
		nl.items = append(nl.items, p.src[osp.start:osp.end])
	}
	_, end, err := p.token()
	nl.arr = span{sp.start, end.end}
	return err
}

// Filter returns the result with only the items whose key keep accepts,
// in their order and bytes, every other member as it was; with every item
// kept, the result itself.
func (nl NamedList) Filter(keep func(key string) bool) jsontext.Value {
	kept := make([][]byte, 0, len(nl.items))
	for i, it := range nl.items {
		if keep(nl.Keys[i]) {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(nl.items) {
		return nl.raw
	}
	out := make([]byte, 0, len(nl.raw))
	out = append(out, nl.raw[:nl.arr.start]...)
	out = append(out, '[')
	out = append(out, bytes.Join(kept, []byte{','})...)
	out = append(out, ']')
	return append(out, nl.raw[nl.arr.end:]...)
}
