package creds

import (
	"errors"
	"fmt"
	"strings"
)

// Template is a header value with secrets in it: "Bearer {{secret}}",
// "token {{secret github}}". Only {{secret}} (the binding's own secret)
// and {{secret NAME}} are placeholders; anything else in double braces is
// an error, so a typo is found at load rather than sent upstream.
type Template struct {
	parts []part
	size  int // the literal bytes, to size the result
}

type part struct {
	lit    string
	secret bool
	name   string // "" : the binding's own secret
}

// ParseTemplate parses a header value template.
func ParseTemplate(s string) (Template, error) {
	var t Template
	rest := s
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return Template{}, fmt.Errorf("template %q: unmatched }}", s)
			}
			t.lit(rest)
			break
		}
		if strings.Contains(rest[:i], "}}") {
			return Template{}, fmt.Errorf("template %q: unmatched }}", s)
		}
		t.lit(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return Template{}, fmt.Errorf("template %q: unclosed {{", s)
		}
		inner := rest[i+2 : i+2+j]
		f := strings.Fields(inner)
		if len(f) == 0 || f[0] != "secret" || len(f) > 2 || strings.Contains(inner, "{") {
			return Template{}, fmt.Errorf("template %q: {{%s}} is not a placeholder (want {{secret}} or {{secret NAME}})", s, inner)
		}
		p := part{secret: true}
		if len(f) == 2 {
			if !ValidName(f[1]) {
				return Template{}, fmt.Errorf("template %q: bad secret name %q", s, f[1])
			}
			p.name = f[1]
		}
		t.parts = append(t.parts, p)
		rest = rest[i+2+j+2:]
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return Template{}, errors.New("template: a header value cannot contain a line break or NUL")
	}
	return t, nil
}

func (t *Template) lit(s string) {
	if s != "" {
		t.parts = append(t.parts, part{lit: s})
		t.size += len(s)
	}
}

// Secrets lists the names the template refers to, own ("" in the
// template) standing for {{secret}}; each once, in order.
func (t Template) Secrets(own string) []string {
	var out []string
	for _, p := range t.parts {
		if !p.secret {
			continue
		}
		n := p.name
		if n == "" {
			n = own
		}
		if !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// HasPlaceholder reports whether the template names a secret at all.
func (t Template) HasPlaceholder() bool {
	for _, p := range t.parts {
		if p.secret {
			return true
		}
	}
	return false
}

// Expand builds the value, asking get for each secret (name "" is the
// binding's own). It allocates the result only.
func (t Template) Expand(get func(name string) (Secret, error)) (string, error) {
	var b strings.Builder
	vals := make([]Secret, 0, 2)
	n := t.size
	for _, p := range t.parts {
		if p.secret {
			s, err := get(p.name)
			if err != nil {
				return "", err
			}
			vals = append(vals, s)
			n += len(s.value)
		}
	}
	b.Grow(n)
	k := 0
	for _, p := range t.parts {
		if p.secret {
			b.WriteString(vals[k].value)
			k++
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String(), nil
}

// String is the template as written, with its placeholders: it holds no
// value.
func (t Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case !p.secret:
			b.WriteString(p.lit)
		case p.name == "":
			b.WriteString("{{secret}}")
		default:
			b.WriteString("{{secret " + p.name + "}}")
		}
	}
	return b.String()
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ValidName reports whether s can name a secret: letters, digits, '-',
// '_' and '.', at most 64 bytes.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
