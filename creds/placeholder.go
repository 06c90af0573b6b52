package creds

import "strings"

// Placeholders. An agent may be handed agentg:NAME instead of the value of
// secret NAME; agentg swaps it for the value toward the hosts a binding of
// NAME names, and refuses a request carrying it anywhere else (the proxy
// decides; the guard finds them).
//
// The grammar: the prefix "agentg:" (lower case, exactly) followed at
// once by the name: the longest run of name bytes (letters, digits, '-',
// '_', '.'), without trailing dots, so that a placeholder at the end of a
// sentence is still read as written. "agentg:" followed by anything else
// is not a placeholder. A run that names no secret the policy or the
// runtime holds is an unknown placeholder, which the proxy refuses too: a
// typo is an error, not a literal string sent upstream.

// PlaceholderPrefix starts every placeholder.
const PlaceholderPrefix = "agentg:"

// Placeholder is the placeholder of secret name.
func Placeholder(name string) string { return PlaceholderPrefix + name }

// ParsePlaceholder reads a placeholder at the start of s: the name and the
// placeholder's length in bytes. ok is false when s does not start with
// one. The name may be longer than ValidName allows (it then names no
// secret); it is cut at maxName+1 bytes so an event naming it stays short.
func ParsePlaceholder[T ~string | ~[]byte](s T) (name string, n int, ok bool) {
	const p = len(PlaceholderPrefix)
	if len(s) <= p || string(s[:p]) != PlaceholderPrefix {
		return "", 0, false
	}
	end := p
	for end < len(s) && nameByte(s[end]) {
		end++
	}
	for end > p && s[end-1] == '.' {
		end--
	}
	if end == p {
		return "", 0, false
	}
	name = string(s[p:min(end, p+maxName+1)])
	return name, end, true
}

// maxName is the longest secret name (ValidName).
const maxName = 64

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// JSONEscape escapes s for the inside of a JSON string.
func JSONEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			const hexd = "0123456789abcdef"
			b.WriteString(`\u00`)
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SwapPlaceholders replaces each placeholder in s whose name is in vals with its
// value (through esc, if any).
func SwapPlaceholders(s string, vals map[string]string, esc func(string) string) string {
	if !strings.Contains(s, PlaceholderPrefix) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, PlaceholderPrefix)
		if i < 0 {
			break
		}
		name, n, ok := ParsePlaceholder(s[i:])
		v, known := vals[name]
		if !ok || !known {
			b.WriteString(s[:i+len(PlaceholderPrefix)])
			s = s[i+len(PlaceholderPrefix):]
			continue
		}
		if esc != nil {
			v = esc(v)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+n:]
	}
	b.WriteString(s)
	return b.String()
}
