package creds

import (
	"errors"
	"strings"
	"sync"
)

// Held is what agentg holds at runtime beyond the policy's secrets: the
// OAuth tokens it obtained for MCP servers. Unlike a Store it outlives
// policy loads, so agentg makes one and gives it to whatever obtains
// tokens and to the leak guard (Guard), which looks for every held value
// in every request from the moment it is held.
//
// A held value may be sent toward the hosts it was held for, and toward
// requests a binding of its name matches; anywhere else the leak guard
// refuses it.
type Held struct {
	mu   sync.Mutex
	vals map[string]heldValue
	subs []func()
}

type heldValue struct {
	value string
	hosts []string // lower case
}

// NewHeld makes an empty Held.
func NewHeld() *Held { return &Held{vals: map[string]heldValue{}} }

// Hold holds value under name (replacing what name held), to be sent
// toward hosts (exact names) only. The error names the secret, never the
// value.
func (h *Held) Hold(name, value string, hosts ...string) error {
	if !ValidName(name) {
		return &Error{Secret: name, Source: "held", Reason: "bad secret name"}
	}
	if value == "" || strings.ContainsAny(value, "\r\n\x00") {
		return &Error{Secret: name, Source: "held", Reason: "the value is empty or contains a line break or NUL"}
	}
	hv := heldValue{value: value, hosts: make([]string, 0, len(hosts))}
	for _, x := range hosts {
		if x == "" {
			return &Error{Secret: name, Source: "held", Reason: "an empty host"}
		}
		hv.hosts = append(hv.hosts, strings.ToLower(strings.TrimSuffix(x, ".")))
	}
	h.mu.Lock()
	h.vals[name] = hv
	subs := h.subs
	h.mu.Unlock()
	for _, fn := range subs {
		fn()
	}
	return nil
}

// Drop forgets name's value. The leak guard no longer knows it either:
// drop a token only when it can no longer be used.
func (h *Held) Drop(name string) {
	h.mu.Lock()
	_, ok := h.vals[name]
	delete(h.vals, name)
	subs := h.subs
	h.mu.Unlock()
	if ok {
		for _, fn := range subs {
			fn()
		}
	}
}

// Get returns the value held under name.
func (h *Held) Get(name string) (Secret, bool) {
	if h == nil {
		return Secret{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.vals[name]
	return Secret{name: name, value: v.value}, ok
}

// Allows reports whether name's held value may go to host.
func (h *Held) Allows(name, host string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range h.vals[name].hosts {
		if x == host {
			return true
		}
	}
	return false
}

// values lists the held values by name.
func (h *Held) values() map[string]string {
	out := map[string]string{}
	if h == nil {
		return out
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for n, v := range h.vals {
		out[n] = v.value
	}
	return out
}

// watch calls fn after every change.
func (h *Held) watch(fn func()) error {
	if h == nil {
		return errors.New("no Held")
	}
	h.mu.Lock()
	h.subs = append(h.subs, fn)
	h.mu.Unlock()
	return nil
}

// HeldName makes s a name Hold takes: every byte a secret name cannot
// hold becomes '_', and it is cut to 64 bytes. Runtime values are named
// after what they are for (a binding's id, a broker's oauth:ID:access),
// which may hold other bytes.
func HeldName(s string) string {
	b := []byte(s[:min(len(s), 64)])
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
