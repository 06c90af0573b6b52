// Package creds holds the secrets agentg attaches to requests on an
// agent's behalf: where each comes from (an environment variable, a file,
// a command's output, or, for tests and demos, the policy itself), and
// the templates that put one into a header. It also knows every value
// agentg holds (the policy's, read eagerly per load, and those held at
// runtime, Held) and finds them, and agentg:NAME placeholders, in what
// agents send, in one pass (Guard, leak.go and scan.go): the callers
// decide whether what was found may go where it goes.
//
// A value never leaves this package except through Secret.Reveal, which
// the injector calls to build the header it sends upstream. Everything
// else (String, Format, JSON, every error) names the secret, never its
// value.
package creds

import (
	"fmt"
	"log/slog"
)

// Secret is one secret's value, known by its name. Printing it in any way
// (fmt verbs, %#v, JSON, text, slog) gives secret(NAME).
type Secret struct {
	name  string
	value string
}

// Name is the secret's name as the policy writes it.
func (s Secret) Name() string { return s.name }

// Reveal returns the value, for building what is sent upstream only.
func (s Secret) Reveal() string { return s.value }

// String names the secret: secret(NAME).
func (s Secret) String() string { return "secret(" + s.name + ")" }

// GoString is String, so %#v does not print the fields.
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON is the name, quoted.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText is the name.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue is the name, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Error is an error about one secret: it names the secret and where it
// comes from, never a value.
type Error struct {
	Secret string
	Source string // Source.String()
	Reason string
}

func (e *Error) Error() string {
	return "secret " + e.Secret + " (" + e.Source + "): " + e.Reason
}
