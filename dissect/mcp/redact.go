package mcp

import (
	"bytes"
	"regexp"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Scope says which strings of a value Redact rewrites.
type Scope uint8

const (
	// Arguments: every string anywhere in a tools/call's arguments (or
	// any other value given), at any depth. Object names are not
	// rewritten: they are the tool's parameter names.
	Arguments Scope = iota + 1
	// Results: the text a result shows the model, in every revision's
	// schema: content[].text (TextContent), content[].resource.text (an
	// EmbeddedResource's TextResourceContents), every string anywhere in
	// structuredContent (2025-06-18 on), and contents[].text (a
	// ReadResourceResult). That covers CallToolResult, the tasks/result
	// payload (2025-11-25: the CallToolResult of the task) and
	// ReadResourceResult. Names are matched as encoding/json matches
	// them, case-insensitively, since a Go client reads "Text" as text.
	Results
)

// Redaction is one redaction rule: matches of Pattern are replaced with
// [REDACTED:<ID>].
type Redaction struct {
	ID      string
	Pattern *regexp.Regexp
}

// Redact rewrites the strings of v in scope where, replacing every match
// of the rules' patterns with [REDACTED:<id>], and returns the new value
// and the ids of the rules that fired (each once, in rule order). Matches
// of all rules are found in the original string and overlapping ones
// merged into one marker (the leftmost match's rule names it), so no rule
// rewrites another's marker; empty matches are ignored. Rewritten strings
// are encoded anew; every other byte of v is kept. With nothing matched v
// itself is returned, as is an empty v (a call without arguments). v that
// is not strict JSON, by the rules of Parse, is an error (*ParseError).
func Redact(v jsontext.Value, where Scope, rules []Redaction) (jsontext.Value, []string, error) {
	if len(rules) == 0 || len(v) == 0 {
		return v, nil, nil
	}
	r := redactor{p: newParser(v, Limits{}.withDefaults()), rules: rules, fired: make([]bool, len(rules))}
	defer r.p.release()
	root := sAll
	if where == Results {
		root = sResult
	}
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

// state is where in a result the walk is, for Results.
type state uint8

const (
	sNone     state = iota // nothing here is redacted
	sAll                   // every string here is
	sResult                // the result object
	sContent               // content, or one of its items
	sResource              // an embedded resource, contents, or one of its items
)

func (s state) member(name []byte) state {
	is := func(n string) bool { return bytes.EqualFold(name, []byte(n)) }
	switch s {
	case sAll:
		return sAll
	case sResult:
		switch {
		case is("content"):
			return sContent
		case is("structuredContent"):
			return sAll
		case is("contents"):
			return sResource
		}
	case sContent:
		switch {
		case is("text"):
			return sAll
		case is("resource"):
			return sResource
		}
	case sResource:
		if is("text") {
			return sAll
		}
	}
	return sNone
}

func (s state) element() state {
	if s == sResult {
		return sNone
	}
	return s
}

type redactor struct {
	p     *parser
	rules []Redaction
	fired []bool
	out   []byte // nil until a string changes
	last  int    // v[:last] is in out
	hits  []hit
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
		if s == sAll || s == sContent || s == sResource {
			r.redact(tok.String(), sp)
		}
		return nil
	case '{':
		_, err := r.p.object(sp, depth+1, func(name []byte) (bool, error) {
			return true, r.value(s.member(name), depth+1)
		})
		return err
	case '[':
		if depth+1 > r.p.lim.MaxDepth {
			return refuse(ReasonTooDeep, CodeParseError, sp.start, "nesting deeper than %d", r.p.lim.MaxDepth)
		}
		for r.p.dec.PeekKind() != ']' {
			if err := r.value(s.element(), depth+1); err != nil {
				return err
			}
		}
		_, _, err := r.p.token()
		return err
	}
	_, err = r.p.rest(tok, sp, depth)
	return err
}

// redact replaces the string token at sp if any rule matches its text.
func (r *redactor) redact(text string, sp span) {
	r.hits = r.hits[:0]
	for i, rule := range r.rules {
		for _, loc := range rule.Pattern.FindAllStringIndex(text, -1) {
			if loc[0] < loc[1] {
				r.hits = append(r.hits, hit{loc[0], loc[1], i})
			}
		}
	}
	if len(r.hits) == 0 {
		return
	}
	slices.SortFunc(r.hits, func(a, b hit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.rule - b.rule
	})
	var b strings.Builder
	at := 0
	for i := 0; i < len(r.hits); {
		h := r.hits[i]
		end := h.end
		for i++; i < len(r.hits) && r.hits[i].start < end; i++ {
			end = max(end, r.hits[i].end)
			r.fired[r.hits[i].rule] = true
		}
		r.fired[h.rule] = true
		b.WriteString(text[at:h.start])
		b.WriteString("[REDACTED:" + r.rules[h.rule].ID + "]")
		at = end
	}
	b.WriteString(text[at:])
	if r.out == nil {
		r.out = make([]byte, 0, len(r.p.src)+32)
	}
	r.out = append(r.out, r.p.src[r.last:sp.start]...)
	r.out, _ = jsontext.AppendQuote(r.out, b.String())
	r.last = sp.end
}
