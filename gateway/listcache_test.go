package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/rules"
)

// byHeader names the agent by the request's X-Agent header: two agents
// at one gateway, without the credentials gateway/auth checks.
type byHeader struct{}

func (byHeader) Authenticate(r *http.Request, _ *rules.Engine) (Who, error) {
	a := r.Header.Get("X-Agent")
	if a == "" {
		return Who{}, errors.New("no X-Agent")
	}
	return Who{Agent: a, Client: r.RemoteAddr}, nil
}

func (byHeader) Challenge() string { return "Bearer" }

type agentHeader string

func (a agentHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Agent", string(a))
	return http.DefaultTransport.RoundTrip(r)
}

// connectAs opens a client session of the gateway as agent.
func connectAs(t *testing.T, ctx context.Context, f *fixture, agent string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: f.url, HTTPClient: &http.Client{Transport: agentHeader(agent)}},
		&sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func listNames(t *testing.T, ctx context.Context, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// TestListCachePerAgent: the list cache answers an agent's second
// session without asking the server, and never answers one agent with
// another's list: a tool the policy hides from agent b stays hidden from
// b after agent a, who may see it, filled the cache.
func TestListCachePerAgent(t *testing.T) {
	f := newToolsFixture(t, byHeader{}, "    - deny: up.delete_project\n      agents: [b]\n      id: b-no-delete\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	both, echo := []string{"up.delete_project", "up.echo"}, []string{"up.echo"}

	a1 := connectAs(t, ctx, f, "a", nil)
	if got := listNames(t, ctx, a1); !slices.Equal(got, both) {
		t.Fatalf("agent a's tools: %v, want %v", got, both)
	}
	b1 := connectAs(t, ctx, f, "b", nil)
	if got := listNames(t, ctx, b1); !slices.Equal(got, echo) {
		t.Fatalf("agent b's tools after a's listing: %v, want %v (a cached list leaked across agents)", got, echo)
	}
	// Both agents' lists are cached now: new sessions of each list
	// without the server hearing a request, and each sees its own.
	hits := f.hits.Load()
	a2 := connectAs(t, ctx, f, "a", nil)
	b2 := connectAs(t, ctx, f, "b", nil)
	if got := listNames(t, ctx, b2); !slices.Equal(got, echo) {
		t.Fatalf("agent b's second session: %v, want %v", got, echo)
	}
	if got := listNames(t, ctx, a2); !slices.Equal(got, both) {
		t.Fatalf("agent a's second session: %v, want %v", got, both)
	}
	if n := f.hits.Load() - hits; n != 0 {
		t.Fatalf("the server got %d requests for lists the cache holds", n)
	}
	// Hidden is not only unlisted: b's call is refused by the guard.
	runs := f.runs.Load()
	if _, err := b2.CallTool(ctx, &sdk.CallToolParams{Name: "up.delete_project", Arguments: map[string]any{}}); err == nil {
		t.Fatal("agent b's call of up.delete_project was not refused")
	}
	if _, err := a2.CallTool(ctx, &sdk.CallToolParams{Name: "up.delete_project", Arguments: map[string]any{}}); err != nil {
		t.Fatalf("agent a's call of up.delete_project: %v", err)
	}
	if n := f.runs.Load() - runs; n != 1 {
		t.Fatalf("the server ran %d tools, want 1 (agent a's)", n)
	}
}

// TestListCacheChanged: a server's list_changed drops its cached lists,
// and a session that only ever listed from the cache (it has no
// session with the server to hear the notification on) is told, and
// then lists the new tool.
func TestListCacheChanged(t *testing.T) {
	f := newFixture(t, byHeader{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a1 := connectAs(t, ctx, f, "a", nil)
	listNames(t, ctx, a1) // opens a1's session with the server, fills the cache
	changed := make(chan struct{}, 8)
	hits := f.hits.Load()
	a2 := connectAs(t, ctx, f, "a", &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	if got := listNames(t, ctx, a2); !slices.Equal(got, []string{"up.echo"}) {
		t.Fatalf("a2's tools: %v", got)
	}
	if f.hits.Load() != hits {
		t.Fatal("a2's listing reached the server: the cache did not answer it")
	}
	// a2's catalogue was registered as it listed: its SDK server says
	// list_changed for that once; wait for it, so that what comes next
	// is about the server's change.
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no list_changed for a2's first listing")
	}
	f.up.AddTool(&sdk.Tool{Name: "fresh", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{}, nil
		})
	// Each notification is followed by a listing, until one holds the
	// new tool.
	for {
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("a2 was not told that the list changed, or its list never held up.fresh")
		}
		if slices.Contains(listNames(t, ctx, a2), "up.fresh") {
			return
		}
	}
}

// TestListCacheRules: the cache's contract, step by step, on a clock of
// its own: what answers from the cache, and what asks the server again.
func TestListCacheRules(t *testing.T) {
	e1, e2 := &rules.Engine{}, &rules.Engine{}
	a := listKey{agent: "a", server: "s", k: kindTools}
	type step struct {
		agent   string        // the key's agent ("" is a's)
		engine  *rules.Engine // nil: e1
		advance time.Duration // the clock moves first
		changed bool          // server s says its tools changed, instead of a get
		fail    bool          // the fetch fails
		fetched bool          // want: the server was asked
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"fresh answers", []step{{fetched: true}, {advance: time.Second}, {advance: 8 * time.Second}}},
		{"stale asks again", []step{{fetched: true}, {advance: DefaultListFresh, fetched: true}, {}}},
		{"per agent", []step{{fetched: true}, {agent: "b", fetched: true}, {agent: "b"}, {}}},
		{"a reload empties it", []step{{fetched: true}, {engine: e2, fetched: true}, {engine: e2}}},
		{"list_changed drops it", []step{{fetched: true}, {agent: "b", fetched: true}, {changed: true}, {fetched: true}, {agent: "b", fetched: true}}},
		{"a failure is not kept", []step{{fail: true, fetched: true}, {fetched: true}, {}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1_000_000, 0)
			lc := newListCache(DefaultListFresh)
			lc.now = func() time.Time { return now }
			cat := &catalogue{}
			for i, s := range c.steps {
				now = now.Add(s.advance)
				if s.changed {
					lc.changed("s", []kind{kindTools}, nil)
					continue
				}
				key := a
				if s.agent != "" {
					key.agent = s.agent
				}
				e := s.engine
				if e == nil {
					e = e1
				}
				fetched := false
				want := &serverList{}
				got, err := lc.get(context.Background(), e, key, cat, func(context.Context) (*serverList, error) {
					fetched = true
					if s.fail {
						return nil, errors.New("no answer")
					}
					return want, nil
				})
				if fetched != s.fetched {
					t.Fatalf("step %d: fetched %v, want %v", i, fetched, s.fetched)
				}
				if s.fail != (err != nil) || !s.fail && got == nil {
					t.Fatalf("step %d: %v, %v", i, got, err)
				}
			}
		})
	}
}

// TestListCacheSweep: lists no one asked for within their freshness
// are dropped (at most once per freshness), so the cache holds what its
// agents used lately, not every agent it ever saw.
func TestListCacheSweep(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	lc := newListCache(DefaultListFresh)
	lc.now = func() time.Time { return now }
	e, cat := &rules.Engine{}, &catalogue{}
	get := func(agent string) {
		if _, err := lc.get(context.Background(), e, listKey{agent: agent, server: "s", k: kindTools}, cat,
			func(context.Context) (*serverList, error) { return &serverList{}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		get(fmt.Sprintf("agent-%d", i))
	}
	now = now.Add(DefaultListFresh / 2)
	get("recent")
	now = now.Add(DefaultListFresh/2 + time.Second)
	get("new")
	lc.mu.Lock()
	n := len(lc.slots)
	_, recent := lc.slots[listKey{agent: "recent", server: "s", k: kindTools}]
	lc.mu.Unlock()
	if n != 2 || !recent {
		t.Fatalf("%d lists kept after a sweep (recent kept: %v), want 2: recent and new", n, recent)
	}
}

// TestListCacheOneFetch: sessions that miss the same list together wait
// for one fetch; and a catalogue forgotten (its session ended) is never
// told of changes again, even by a get that was under way.
func TestListCacheOneFetch(t *testing.T) {
	lc := newListCache(DefaultListFresh)
	e := &rules.Engine{}
	key := listKey{agent: "a", server: "s", k: kindTools}
	release := make(chan struct{})
	var fetches atomic.Int64
	fetch := func(context.Context) (*serverList, error) {
		fetches.Add(1)
		<-release
		return &serverList{}, nil
	}
	cats := make([]*catalogue, 8)
	got := make([]*serverList, len(cats))
	var wg sync.WaitGroup
	for i := range cats {
		cats[i] = &catalogue{}
		wg.Go(func() {
			l, err := lc.get(context.Background(), e, key, cats[i], fetch)
			if err != nil {
				t.Error(err)
			}
			got[i] = l
		})
	}
	// Every get but the fetching one waits on its slot: the slot exists
	// once the first registered, and the rest register before waiting.
	for {
		lc.mu.Lock()
		n := len(lc.watchers)
		lc.mu.Unlock()
		if n == len(cats) {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for %d sessions missing together, want 1", n, len(cats))
	}
	for i := range got {
		if got[i] != got[0] || got[i] == nil {
			t.Fatalf("session %d got another list", i)
		}
	}
	lc.forget(cats[0])
	if _, err := lc.get(context.Background(), e, key, cats[0], fetch); err != nil {
		t.Fatal(err)
	}
	for _, c := range lc.changed("s", []kind{kindTools}, nil) {
		if c == cats[0] {
			t.Fatal("a forgotten catalogue is told of a change")
		}
	}
}
