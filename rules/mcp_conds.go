package rules

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Conditions of tool rules ("when:"): tests on a call's arguments, read
// through ArgLookup so that the policy and the codec can never read a
// message differently, and on the tool's annotations.

// ArgKind is the JSON type of an argument value. The zero value is no
// kind: a lookup never returns it for a value that exists.
type ArgKind uint8

const (
	ArgString ArgKind = iota + 1
	ArgNumber
	ArgBool
	ArgNull
	ArgObject
	ArgArray
)

// String returns the JSON type's name ("string", "number", ...).
func (k ArgKind) String() string {
	switch k {
	case ArgString:
		return "string"
	case ArgNumber:
		return "number"
	case ArgBool:
		return "bool"
	case ArgNull:
		return "null"
	case ArgObject:
		return "object"
	case ArgArray:
		return "array"
	}
	return "ArgKind(" + strconv.Itoa(int(k)) + ")"
}

// ArgValue is one value in a call's arguments.
type ArgValue struct {
	Kind ArgKind
	// Text is the value as conditions read it: a string decoded (escapes
	// resolved, as the server will read it); a number as written in the
	// message; "true" or "false"; "null"; an object or array as its JSON
	// text in the message, so that a glob or regexp written for a string
	// still sees a string nested inside a container.
	Text string
}

// ArgLookup reads a tool call's arguments. The MCP codec implements it,
// so a condition reads exactly what the codec parsed.
type ArgLookup interface {
	// Arg resolves a JSON Pointer (RFC 6901: "/a/0/b", "~0" for '~'
	// and "~1" for '/') against the call's arguments object; ok is
	// false when the pointer names nothing there.
	Arg(pointer string) (v ArgValue, ok bool)
}

// ToolHints is a set of tool annotation hints: those a server's tool
// definition explicitly sets to true.
type ToolHints uint8

const (
	HintReadOnly ToolHints = 1 << iota
	HintDestructive
	HintIdempotent
	HintOpenWorld
)

var hintNames = [...]struct {
	name string
	hint ToolHints
}{
	{"readOnlyHint", HintReadOnly},
	{"destructiveHint", HintDestructive},
	{"idempotentHint", HintIdempotent},
	{"openWorldHint", HintOpenWorld},
}

// HintByName returns the hint an annotation key names ("destructiveHint"
// is HintDestructive), or 0 for a key that is not a hint, so that the
// codec and the policy agree on the names.
func HintByName(name string) ToolHints {
	for _, h := range hintNames {
		if h.name == name {
			return h.hint
		}
	}
	return 0
}

// Has reports whether every hint in h is in s.
func (s ToolHints) Has(h ToolHints) bool { return h != 0 && s&h == h }

type condKind uint8

const (
	condEquals condKind = iota
	condGlob
	condMatches
	condExists
	condAnnotation
)

// toolCond is one compiled condition.
type toolCond struct {
	kind    condKind
	pointer string // arg conditions
	text    string // for reasons
	// equals
	vkind ArgKind
	vtext string
	vnum  float64
	// glob
	glob string
	// matches
	re *regexp.Regexp
	// exists
	exists bool
	// annotation
	hint ToolHints
}

// toolConds parses a when: list of conditions, all of which must hold:
//
//	when:
//	  - arg: /json/pointer    # with one of equals, glob, matches, exists
//	    equals: VALUE         # a YAML string, number, true/false or null,
//	                          # compared with the value's JSON type
//	    glob: "rm *"          # '*' any run; tests the value's Text
//	    matches: 'rm\s+-rf'   # RE2, unanchored; tests the value's Text
//	    exists: true          # the pointer names a value (false: none)
//	  - annotation: destructiveHint   # the server explicitly says true
func (p *mcpParser) toolConds(n *yaml.Node) ([]toolCond, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, p.ps.errf(n, "when must be a list of conditions ({arg: /POINTER, equals|glob|matches|exists: ...} or {annotation: HINT})")
	}
	var out []toolCond
	for _, it := range n.Content {
		c, err := p.toolCond(it)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *mcpParser) toolCond(it *yaml.Node) (toolCond, error) {
	var c toolCond
	var argNode, annNode, opNode, opKey *yaml.Node
	err := p.ps.eachKey(it, func(k, v *yaml.Node) error {
		switch k.Value {
		case "arg":
			argNode = v
		case "annotation":
			annNode = v
		case "equals", "glob", "matches", "exists":
			if opKey != nil {
				return p.ps.errf(k, "a condition has one test, not both %s and %s", opKey.Value, k.Value)
			}
			opKey, opNode = k, v
		default:
			return p.ps.errf(k, "unknown condition key %q (want arg with equals, glob, matches or exists; or annotation)", k.Value)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	switch {
	case annNode != nil && (argNode != nil || opKey != nil):
		return c, p.ps.errf(it, "an annotation condition has no arg and no test (it holds when the server sets the hint to true)")
	case annNode != nil:
		s, err := p.ps.scalar(annNode)
		if err != nil {
			return c, err
		}
		if c.hint = HintByName(s); c.hint == 0 {
			return c, p.ps.errf(annNode, "unknown annotation %q (want readOnlyHint, destructiveHint, idempotentHint or openWorldHint)", s)
		}
		c.kind, c.text = condAnnotation, "annotation "+s
		return c, nil
	case argNode == nil:
		return c, p.ps.errf(it, "condition without arg or annotation")
	case opKey == nil:
		return c, p.ps.errf(it, "arg condition without a test (equals, glob, matches or exists)")
	}
	if c.pointer, err = p.ps.scalar(argNode); err != nil {
		return c, err
	}
	if err := checkPointer(c.pointer); err != "" {
		return c, p.ps.errf(argNode, "bad JSON Pointer %q: %s", c.pointer, err)
	}
	if opNode.Kind != yaml.ScalarNode {
		return c, p.ps.errf(opNode, "%s takes a single value", opKey.Value)
	}
	c.text = "arg " + c.pointer + " " + opKey.Value + " " + quoteValue(opNode.Value)
	switch opKey.Value {
	case "equals":
		c.kind, c.vtext = condEquals, opNode.Value
		switch opNode.Tag {
		case "!!str":
			c.vkind = ArgString
		case "!!int", "!!float":
			var f float64
			if err := opNode.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return c, p.ps.errf(opNode, "equals: %q is not a finite number", opNode.Value)
			}
			c.vkind, c.vnum = ArgNumber, f
		case "!!bool":
			b, err := p.ps.boolean(opNode)
			if err != nil {
				return c, err
			}
			c.vkind, c.vtext = ArgBool, strconv.FormatBool(b)
		case "!!null":
			c.vkind, c.vtext = ArgNull, "null"
			c.text = "arg " + c.pointer + " equals null"
		default:
			return c, p.ps.errf(opNode, "equals takes a string, a number, true, false or null, not %s", opNode.Tag)
		}
	case "glob":
		c.kind, c.glob = condGlob, opNode.Value
	case "matches":
		re, err := regexp.Compile(opNode.Value)
		if err != nil {
			return c, p.ps.errf(opNode, "bad regexp %q: %v", opNode.Value, err)
		}
		c.kind, c.re = condMatches, re
	case "exists":
		b, err := p.ps.boolean(opNode)
		if err != nil {
			return c, err
		}
		c.kind, c.exists = condExists, b
		c.text = "arg " + c.pointer + " exists"
		if !b {
			c.text = "arg " + c.pointer + " does not exist"
		}
	}
	return c, nil
}

// quoteValue quotes a condition's value for reasons: as written when
// that is unambiguous (a regexp's backslashes stay single), else in Go
// syntax.
func quoteValue(v string) string {
	if strconv.CanBackquote(v) && !strings.ContainsRune(v, '"') {
		return `"` + v + `"`
	}
	return strconv.Quote(v)
}

// checkPointer returns why s is not a JSON Pointer into the arguments,
// or "".
func checkPointer(s string) string {
	if s == "" || s[0] != '/' {
		return `a pointer starts with "/" ("/command", "/paths/0")`
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '~' && (i+1 == len(s) || s[i+1] != '0' && s[i+1] != '1'):
			return `"~" must be followed by 0 ("~") or 1 ("/")`
		case c < 0x20 || c == 0x7f:
			return "control character"
		}
	}
	return ""
}

func condsText(cs []toolCond) string {
	if len(cs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, c := range cs {
		if i == 0 {
			b.WriteString(" when ")
		} else {
			b.WriteString(" and ")
		}
		b.WriteString(c.text)
	}
	return b.String()
}

// condsHold reports whether every condition holds for the call.
func condsHold(cs []toolCond, q *ToolCall) bool {
	for i := range cs {
		if !cs[i].holds(q) {
			return false
		}
	}
	return true
}

// holds reports whether the condition holds. An arg condition whose
// pointer names nothing does not hold, except "exists: false".
func (c *toolCond) holds(q *ToolCall) bool {
	if c.kind == condAnnotation {
		return q.Annotations.Has(c.hint)
	}
	var v ArgValue
	ok := false
	if q.Args != nil {
		v, ok = q.Args.Arg(c.pointer)
	}
	if !ok {
		return c.kind == condExists && !c.exists
	}
	switch c.kind {
	case condExists:
		return c.exists
	case condGlob:
		return wildMatch(c.glob, v.Text)
	case condMatches:
		return c.re.MatchString(v.Text)
	}
	// condEquals
	if v.Kind != c.vkind {
		return false
	}
	if c.vkind != ArgNumber {
		return v.Text == c.vtext
	}
	f, err := strconv.ParseFloat(v.Text, 64)
	return err == nil && f == c.vnum
}
