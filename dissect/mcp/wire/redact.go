package wire

import (
	"bytes"
	"regexp"
	"slices"

	"github.com/go-json-experiment/json/jsontext"
)

// Redaction is one redaction rule: matches of Pattern are replaced with
// [REDACTED:<ID>].
type Redaction struct {
	ID      string
	Pattern *regexp.Regexp
}

// Redaction covers every string value, every member name and the text of
// every number of what it is given, at any depth: not a list of fields. A list of fields is a list
// of the places a secret is not looked for (an error's message, a
// resource_link's uri, _meta, a log notification, a member name), so the
// scope is the whole message and the exceptions are few and named:
//
//   - The JSON-RPC envelope is never rewritten: the names jsonrpc, id,
//     method, params, result and error, the jsonrpc and method values, and
//     a request's id (its answer is matched by it). Rewriting any of them
//     would change what the message is, so a match there makes
//     RedactMessage fail with *Unredactable, and the guard refuses the
//     message instead of forwarding it.
//   - The name of a tools/call or prompts/get, and the uri of a
//     resources/read: the policy decided the message by them, and the
//     Mcp-Name header mirrors them. A match there is *Unredactable too.
//   - The id of a response is not looked at: it is the id of a request of
//     the peer receiving it, which that peer chose itself (and agentg
//     matched the response to it), so it carries nothing the peer does not
//     already have.
//
// A member name that is rewritten must stay distinct from its siblings
// (two secrets in one object would both become the marker): when it does
// not, the value is *Unredactable, since either name would lose a member.

// Unredactable is a match of a redaction where rewriting would change
// what the message means (see RedactMessage). It names the field and the
// rule, never the text.
type Unredactable struct {
	Field string // "id", "method", "params.name", "member name", …
	Rule  string // the redaction's id
}

func (e *Unredactable) Error() string {
	return "a match of redact rule " + e.Rule + " in the " + e.Field + ", which cannot be rewritten without changing the message"
}

// Redact rewrites every string and every member name of v, at any depth,
// replacing each match of the rules' patterns with [REDACTED:<id>] (and
// every number a pattern matches, as written, with the marker as a
// string), and
// returns the new value and the ids of the rules that fired (each once,
// in rule order). Matches of all rules are found in the original string
// and overlapping ones merged into one marker (the leftmost match's rule
// names it), so no rule rewrites another's marker; empty matches are
// ignored. Rewritten strings are encoded anew; every other byte of v is
// kept. With nothing matched v itself is returned, as is an empty v (a
// call without arguments). v that is not strict JSON, by the rules of
// Parse, is an error (*ParseError); names that would collide once
// rewritten are an *Unredactable.
func Redact(v jsontext.Value, rules []Redaction) (jsontext.Value, []string, error) {
	if len(rules) == 0 || len(v) == 0 {
		return v, nil, nil
	}
	return redactFrom(v, sAll, "", rules)
}

// RedactText is text with every match of the rules replaced by its
// marker, for text agentg writes itself (an event's fields).
func RedactText(text string, rules []Redaction) string {
	if len(rules) == 0 || text == "" {
		return text
	}
	r := redactor{rules: rules, fired: make([]bool, len(rules))}
	if out, ok := r.replace([]byte(text)); ok {
		return out
	}
	return text
}

// RedactMessage is Redact over one whole JSON-RPC message, m.Raw, in
// either direction: the params of a request or notification, the result
// of a response, the error (code, message, data) of an error response,
// and any member beyond those, names included. What it must not rewrite
// (the envelope, a request's id, the name a tools/call, prompts/get or
// resources/read is decided by) it only checks: a match there is an
// *Unredactable and the message must not be forwarded. With nothing
// matched, m.Raw itself is returned.
func RedactMessage(m *Message, rules []Redaction) ([]byte, []string, error) {
	if len(rules) == 0 {
		return m.Raw, nil, nil
	}
	named := ""
	switch m.Method {
	case "tools/call", "prompts/get":
		named = "name"
	case "resources/read":
		named = "uri"
	}
	root := sMessage
	if m.Kind == KindRequest {
		root = sRequest
	}
	return redactFrom(m.Raw, root, named, rules)
}

func redactFrom(v []byte, root state, named string, rules []Redaction) ([]byte, []string, error) {
	r := redactor{p: newParser(v, Limits{}.withDefaults()), rules: rules, fired: make([]bool, len(rules)), named: named}
	defer r.p.release()
	if err := r.value(root, 0); err != nil {
		return nil, nil, err
	}
	if err := r.p.end(); err != nil {
		return nil, nil, err
	}
	var ids []string
	for i, f := range r.fired {
		if f && !slices.Contains(ids, rules[i].ID) {
			ids = append(ids, rules[i].ID)
		}
	}
	if r.out == nil {
		return v, ids, nil
	}
	return append(r.out, v[r.last:]...), ids, nil
}

// state is where in a message the walk is.
type state uint8

const (
	sAll      state = iota // every string and name here is rewritten
	sMessage               // a message object whose id is not looked at
	sRequest               // a request object: its id is checked
	sParams                // the params of a message decided by a name
	sEnvelope              // an envelope value: checked, never rewritten
	sSkip                  // a response's id: neither
)

// member is the state of the value of member name in an object in state
// s, and whether the name itself may be rewritten (else it is checked).
func (r *redactor) member(s state, name []byte) (state, bool) {
	switch s {
	case sMessage, sRequest:
		switch string(name) {
		case "jsonrpc", "method":
			return sEnvelope, false
		case "id":
			if s == sRequest {
				return sEnvelope, false
			}
			return sSkip, false
		case "params":
			if r.named != "" {
				return sParams, false
			}
			return sAll, false
		case "result", "error":
			return sAll, false
		}
	case sParams:
		if string(name) == r.named {
			return sEnvelope, false
		}
	}
	return sAll, true
}

type redactor struct {
	p     *parser
	rules []Redaction
	fired []bool
	named string // the params member a message is decided by, if any
	field string // the envelope member being checked, for errors
	out   []byte // nil until a string changes
	last  int    // v[:last] is in out
	hits  []hit
	// lastRule is the rule of the last rewrite, for errors.
	lastRule int
}

type hit struct{ start, end, rule int }

// value walks one value in state s; depth is that of its container.
func (r *redactor) value(s state, depth int) error {
	tok, sp, err := r.p.token()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '"':
		return r.text(s, tok, sp)
	case '{':
		if s == sEnvelope || s == sSkip {
			s = sAll // not an envelope value agentg reads: an object there is any other
		}
		return r.object(s, sp, depth+1)
	case '[':
		if depth+1 > r.p.lim.MaxDepth {
			return refuse(ReasonTooDeep, CodeParseError, sp.start, "nesting deeper than %d", r.p.lim.MaxDepth)
		}
		s = sAll // no envelope value is an array
		for r.p.dec.PeekKind() != ']' {
			if err := r.value(s, depth+1); err != nil {
				return err
			}
		}
		_, _, err := r.p.token()
		return err
	}
	if tok.Kind() == '0' {
		// A number's text can be a secret too (a card number, a PIN): a
		// numeric request id is checked like a string one, and anywhere
		// else a number a pattern matches, as written, becomes the marker
		// (a string: the peer may refuse the type, never see the digits).
		switch num := r.p.src[sp.start:sp.end]; s {
		case sEnvelope:
			if i := r.matches(num); i >= 0 {
				return &Unredactable{Field: r.field, Rule: r.rules[i].ID}
			}
		case sAll:
			if repl, ok := r.replace(num); ok {
				if _, err := r.p.rest(tok, sp, depth); err != nil {
					return err
				}
				r.splice(sp, repl)
				return nil
			}
		}
	}
	_, err = r.p.rest(tok, sp, depth)
	return err
}

// text rewrites (sAll) or checks (sEnvelope) one string token.
func (r *redactor) text(s state, tok jsontext.Token, sp span) error {
	switch s {
	case sSkip:
		return nil
	case sEnvelope:
		if i := r.matches(r.p.name(tok, sp)); i >= 0 {
			return &Unredactable{Field: r.field, Rule: r.rules[i].ID}
		}
		return nil
	}
	if repl, ok := r.replace(r.p.name(tok, sp)); ok {
		r.splice(sp, repl)
	}
	return nil
}

// object walks an object whose '{' (at sp) was just read, at depth, as
// parser.object does (depth, __proto__, names equal but for case), and
// rewrites its names where s allows.
func (r *redactor) object(s state, sp span, depth int) error {
	p := r.p
	if depth > p.lim.MaxDepth {
		return refuse(ReasonTooDeep, CodeParseError, sp.start, "nesting deeper than %d", p.lim.MaxDepth)
	}
	mark := len(p.names)
	defer func() { p.names = p.names[:mark] }()
	renamed := false
	for {
		tok, nsp, err := p.token()
		if err != nil {
			return err
		}
		if tok.Kind() == '}' {
			if err := foldConflict(p.names[mark:]); err != nil {
				if renamed {
					return &Unredactable{Field: "member names, equal once redacted,", Rule: r.rules[r.lastRule].ID}
				}
				err.Offset = int64(sp.start)
				return err
			}
			return nil
		}
		name := p.name(tok, nsp)
		if string(name) == "__proto__" {
			return refuse(ReasonProtoKey, CodeInvalidRequest, nsp.start, `a member named "__proto__"`)
		}
		vs, rewrite := r.member(s, name)
		switch {
		case rewrite:
			if repl, ok := r.replace(name); ok {
				r.splice(nsp, repl)
				name, renamed = []byte(repl), true
			}
		default:
			if i := r.matches(name); i >= 0 {
				return &Unredactable{Field: "member name " + string(name), Rule: r.rules[i].ID}
			}
		}
		p.names = append(p.names, name)
		if vs == sEnvelope {
			r.field = string(name)
			if s == sParams {
				r.field = "params." + r.field
			}
		}
		if err := r.value(vs, depth); err != nil {
			return err
		}
	}
}

// matches is the index of the first rule matching text, or -1.
func (r *redactor) matches(text []byte) int {
	for i, rule := range r.rules {
		for _, loc := range rule.Pattern.FindAllIndex(text, -1) {
			if loc[0] < loc[1] {
				return i
			}
		}
	}
	return -1
}

// replace is text with every match of the rules replaced by its marker,
// and whether anything matched.
func (r *redactor) replace(text []byte) (string, bool) {
	r.hits = r.hits[:0]
	for i, rule := range r.rules {
		for _, loc := range rule.Pattern.FindAllIndex(text, -1) {
			if loc[0] < loc[1] {
				r.hits = append(r.hits, hit{loc[0], loc[1], i})
			}
		}
	}
	if len(r.hits) == 0 {
		return "", false
	}
	slices.SortFunc(r.hits, func(a, b hit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.rule - b.rule
	})
	var b bytes.Buffer
	at := 0
	for i := 0; i < len(r.hits); {
		h := r.hits[i]
		end := h.end
		for i++; i < len(r.hits) && r.hits[i].start < end; i++ {
			end = max(end, r.hits[i].end)
			r.fired[r.hits[i].rule] = true
		}
		r.fired[h.rule], r.lastRule = true, h.rule
		b.Write(text[at:h.start])
		b.WriteString("[REDACTED:" + r.rules[h.rule].ID + "]")
		at = end
	}
	b.Write(text[at:])
	return b.String(), true
}

// splice puts the string repl, quoted, where the token at sp was.
func (r *redactor) splice(sp span, repl string) {
	if r.out == nil {
		r.out = make([]byte, 0, len(r.p.src)+32)
	}
	r.out = append(r.out, r.p.src[r.last:sp.start]...)
	r.out, _ = jsontext.AppendQuote(r.out, repl)
	r.last = sp.end
}
