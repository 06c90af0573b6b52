package creds

import (
	"context"
	"sort"
	"sync"
)

// LoadReport says what Preload read: the names whose values the leak
// guard now knows, those too short for it to look for, and those that
// could not be read (with the error, which names the secret and never a
// value). It holds no value.
type LoadReport struct {
	Read   []string
	Short  []string // read, but under MinGuarded bytes: not looked for
	Failed map[string]error
}

// Preload reads every secret of s now, all at once, each bounded by its
// own source's timeout (and ctx), so the leak guard knows every value
// before its first use: an agent may have got one elsewhere. A value read
// here is the one requests get (the Store keeps it); one that fails is
// read again on use, as before.
func (s *Store) Preload(ctx context.Context) LoadReport {
	rep := LoadReport{Failed: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name := range s.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.value(ctx, name, false) // read, not used: no last use
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				rep.Failed[name] = err
			case len(v.value) < MinGuarded:
				rep.Short = append(rep.Short, name)
			default:
				rep.Read = append(rep.Read, name)
			}
		}()
	}
	wg.Wait()
	sort.Strings(rep.Read)
	sort.Strings(rep.Short)
	return rep
}

// Short reports whether the source is an inline value shorter than
// MinGuarded (which agentg check can say without reading anything).
func (s Source) Short() bool { return s.Kind == KindInline && len(s.inline) < MinGuarded }
