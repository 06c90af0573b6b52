package rules

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Live holds the engine in force and swaps it on reload. Readers take the
// current engine with one atomic load and keep using it for the whole
// request, so a reload never changes a decision half way through and never
// blocks the request path.
type Live struct {
	path string
	cur  atomic.Pointer[Engine]

	mu    sync.Mutex // serialises reloads; never taken by readers
	files []string   // what the engine in force was loaded from
	sig   []fileSig  // their state when it was loaded (or last tried)
	subs  []func(*Engine)
}

// OnReload registers fn to be called, after each successful reload, with
// the engine now in force; the proxy uses it to re-decide open tunnels. fn
// runs on the reloading goroutine with no lock of Live's held and must not
// block for long.
func (l *Live) OnReload(fn func(*Engine)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

// NewLive starts with e, loaded from path.
func NewLive(path string, e *Engine) *Live {
	l := &Live{path: path}
	l.cur.Store(e)
	l.files = fileSet(path, e)
	l.sig = signature(l.files)
	return l
}

// Engine returns the engine in force.
func (l *Live) Engine() *Engine { return l.cur.Load() }

// Reload compiles the policy again and swaps it in. On error the engine
// in force stays, and the error (naming file and line) is returned.
func (l *Live) Reload() error {
	l.mu.Lock()
	err := l.reloadLocked(signature(l.files))
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	if err == nil {
		l.notify(subs)
	}
	return err
}

func (l *Live) notify(subs []func(*Engine)) {
	e := l.cur.Load()
	for _, fn := range subs {
		fn(e)
	}
}

// reloadLocked loads the policy; before is the files' state taken before
// reading them, so an edit made during the load triggers another reload.
// It is recorded even when the load fails: a broken edit is reported once,
// and the watcher waits for the next change.
func (l *Live) reloadLocked(before []fileSig) error {
	e, err := Load(l.path)
	l.sig = before
	if err != nil {
		return err
	}
	// A secret's last use outlives the reload (secrets list shows it).
	e.Credentials().Store().KeepLastUse(l.cur.Load().Credentials().Store())
	l.cur.Store(e)
	if nf := fileSet(l.path, e); !slices.Equal(nf, l.files) {
		// The new policy references other lists.
		l.files, l.sig = nf, signature(nf)
	}
	return nil
}

func fileSet(path string, e *Engine) []string {
	return slices.Compact(append([]string{path}, e.Files()...))
}

// fileSig is what the watcher compares: a file's size and modification
// time, or its absence.
type fileSig struct {
	path    string
	size    int64
	mtime   int64
	missing bool
}

func signature(files []string) []fileSig {
	sig := make([]fileSig, len(files))
	for i, f := range files {
		sig[i].path = f
		st, err := os.Stat(f)
		if err != nil {
			sig[i].missing = true
			continue
		}
		sig[i].size, sig[i].mtime = st.Size(), st.ModTime().UnixNano()
	}
	return sig
}

// Watch polls the engine's files every interval and reloads when one of
// them changed since the engine in force was loaded, calling onReload
// (when not nil) with the result. Watch returns when ctx ends.
//
// A change is loaded only once it has settled: the files must look the
// same on two polls in a row. An editor or os.WriteFile truncates before
// it writes, and loading in between would report a half-written file as
// a broken (often empty) policy.
func (l *Live) Watch(ctx context.Context, interval time.Duration, onReload func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending []fileSig
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var tried bool
		var err error
		pending, tried, err = l.poll(pending)
		if tried && onReload != nil {
			onReload(err)
		}
	}
}

// poll is one look at the files. pending is the change seen on the last
// look, not yet settled; poll returns the one to pass next time, and
// whether it tried a reload, with the reload's result.
func (l *Live) poll(pending []fileSig) (next []fileSig, tried bool, err error) {
	l.mu.Lock()
	now := signature(l.files)
	if slices.Equal(now, l.sig) || !slices.Equal(now, pending) {
		l.mu.Unlock()
		return now, false, nil
	}
	err = l.reloadLocked(now)
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	if err == nil {
		l.notify(subs)
	}
	return nil, true, err
}
