package creds

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Store resolves secrets by name. A value is read on first use and kept
// for the Store's life; agentg builds one Store per policy load, so a
// reload reads files and runs commands again. A failed read is kept for
// FailBackoff: the requests meanwhile are refused at once with its error
// instead of each waiting in turn on the same failing source (a hung
// command would otherwise hold every request for the secret in line for
// its whole timeout). A read cut short by its request's own context is
// not kept: that says nothing about the source.
type Store struct {
	entries map[string]*entry
	now     func() time.Time
	// onRead is called after each value read (the leak guard's rebuild,
	// leak.go); nil: none.
	onRead atomic.Pointer[func()]
}

// FailBackoff is how long a failed read is answered from memory.
const FailBackoff = 5 * time.Second

type entry struct {
	src      Source
	mu       sync.Mutex // one read at a time per secret
	got      Secret
	ok       bool
	failed   error
	failedAt time.Time

	// What Status reports, readable without mu (a read under way may
	// hold mu for a command's whole timeout): the last successful Get in
	// unix nanoseconds (0: never), whether the value is held, and the
	// last read's failure, if it failed.
	lastUse atomic.Int64
	held    atomic.Bool
	readErr atomic.Pointer[string]
	// read is the value once read, for the leak guard to take without
	// waiting on mu (which a slow source holds for its whole read).
	read atomic.Pointer[string]
}

// NewStore makes a Store of the named sources.
func NewStore(sources map[string]Source) *Store {
	s := &Store{entries: make(map[string]*entry, len(sources)), now: time.Now}
	for name, src := range sources {
		s.entries[name] = &entry{src: src}
	}
	return s
}

// Names lists the secrets, sorted.
func (s *Store) Names() []string {
	out := make([]string, 0, len(s.entries))
	for n := range s.entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Source says where the named secret comes from.
func (s *Store) Source(name string) (Source, bool) {
	e, ok := s.entries[name]
	if !ok {
		return Source{}, false
	}
	return e.src, true
}

// Get returns the named secret, reading it if it has not been read yet,
// to be attached now: Status reports it as the secret's last use.
func (s *Store) Get(ctx context.Context, name string) (Secret, error) {
	return s.value(ctx, name, true)
}

// value returns the named secret; use says it is to be attached (and so
// counts as the secret's last use), not only read (Preload).
func (s *Store) value(ctx context.Context, name string, use bool) (Secret, error) {
	e, ok := s.entries[name]
	if !ok {
		return Secret{}, &Error{Secret: name, Source: "no source", Reason: "the policy defines no such secret"}
	}
	v, fresh, err := s.get(ctx, e, name)
	if err == nil && use {
		e.lastUse.Store(s.now().UnixNano())
	}
	if fresh {
		// Outside e.mu: the leak guard's rebuild takes every value.
		if fn := s.onRead.Load(); fn != nil {
			(*fn)()
		}
	}
	return v, err
}

// get returns e's value, reading it unless it was read; fresh says it
// was read now.
func (s *Store) get(ctx context.Context, e *entry, name string) (v Secret, fresh bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ok {
		return e.got, false, nil
	}
	if e.failed != nil && s.now().Sub(e.failedAt) < FailBackoff {
		return Secret{}, false, e.failed
	}
	v, err = e.src.read(ctx, name)
	if err != nil {
		if ctx.Err() == nil {
			e.failed, e.failedAt = err, s.now()
			msg := err.Error() // names the secret and its source, never a value
			e.readErr.Store(&msg)
		}
		return Secret{}, false, err
	}
	e.got, e.ok = v, true
	e.held.Store(true)
	e.readErr.Store(nil)
	e.read.Store(&v.value)
	return v, true, nil
}

// Has reports whether the policy defines the named secret.
func (s *Store) Has(name string) bool {
	_, ok := s.entries[name]
	return ok
}

// known lists the values read so far, by name.
func (s *Store) known() map[string]string {
	out := make(map[string]string, len(s.entries))
	for n, e := range s.entries {
		if v := e.read.Load(); v != nil {
			out[n] = *v
		}
	}
	return out
}

// Status is what can be said about one secret without its value.
type Status struct {
	Held    bool      // read, and kept for this load
	Error   string    // the last read's failure, when it failed (it names no value)
	LastUse time.Time // when Get last returned it to be attached; zero: not since the policy loaded
}

// Status reports on the named secret without reading it and without
// waiting for a read under way.
func (s *Store) Status(name string) (Status, bool) {
	e, ok := s.entries[name]
	if !ok {
		return Status{}, false
	}
	st := Status{Held: e.held.Load()}
	if p := e.readErr.Load(); p != nil {
		st.Error = *p
	}
	if n := e.lastUse.Load(); n != 0 {
		st.LastUse = time.Unix(0, n)
	}
	return st, true
}

// KeepLastUse carries each secret's last use over from prev, the store of
// the policy this one replaces, so that a reload (which builds a new
// Store) does not make every secret look unused.
func (s *Store) KeepLastUse(prev *Store) {
	if prev == nil {
		return
	}
	for name, e := range s.entries {
		if p, ok := prev.entries[name]; ok {
			e.lastUse.Store(max(e.lastUse.Load(), p.lastUse.Load()))
		}
	}
}
