package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/rules"
)

// The catalogue: the four lists of every server the gateway serves,
// merged into one, each name in its server's namespace (rules.Serving's
// Name: "PREFIX.NAME", or the server's own name). The lists are asked of
// the servers through the guard, so what the policy hides is never in
// them, and kept a while for the agent's other sessions (listcache.go);
// each is registered on the session's SDK server, which answers the
// client's lists (paginated) and says list_changed when they change.
// A name two servers both give is hidden from both, with an event: never
// one silently shadowing the other.

type kind int

const (
	kindTools kind = iota
	kindPrompts
	kindResources
	kindTemplates
	nKinds
)

var kindNames = [nKinds]string{"tool", "prompt", "resource", "resource template"}

// kindOf is which lists a client's method needs loaded first.
var kindOf = map[string][]kind{
	"tools/list": {kindTools}, "tools/call": {kindTools},
	"prompts/list": {kindPrompts}, "prompts/get": {kindPrompts},
	"resources/list": {kindResources}, "resources/templates/list": {kindTemplates},
	"resources/read":      {kindResources, kindTemplates},
	"resources/subscribe": {kindResources, kindTemplates}, "resources/unsubscribe": {kindResources, kindTemplates},
	"completion/complete": {kindPrompts, kindTemplates},
}

// listing are the methods that ask the servers again every time (the
// list cache answers for them while its list is fresh: listcache.go).
var listing = map[string]bool{"tools/list": true, "prompts/list": true, "resources/list": true, "resources/templates/list": true}

// route is where one catalogue entry goes: a server and its own name
// (or URI) there.
type route struct {
	server, name string
}

type catalogue struct {
	s *session
	// loadMu: one load of a kind at a time, and only of that kind, so a
	// dead server that holds one kind's load to its timeout does not hold
	// the other kinds' behind it.
	loadMu [nKinds]sync.Mutex

	mu       sync.Mutex
	lists    [nKinds]map[string]*serverList // by server: what it listed (absent: it did not answer)
	built    [nKinds]map[string]*serverList // the lists the registered catalogue was built from
	loaded   [nKinds]bool                   // the kind was asked at least once
	reg      [nKinds]map[string]string      // registered key -> what it was registered as
	routes   [nKinds]map[string]route       // registered key -> where it goes
	reported map[string]bool                // collisions already said

	forgotten bool // the list cache no longer tells it of changes (guarded by the cache's mu)
}

func newCatalogue(s *session) *catalogue {
	c := &catalogue{s: s, reported: map[string]bool{}}
	for k := range nKinds {
		c.lists[k], c.reg[k], c.routes[k] = map[string]*serverList{}, map[string]string{}, map[string]route{}
	}
	return c
}

// ensure loads the kinds once, for methods that use them.
func (c *catalogue) ensure(ctx context.Context, kinds []kind, method string) {
	for _, k := range kinds {
		c.mu.Lock()
		done := c.loaded[k]
		c.mu.Unlock()
		if !done {
			c.load(ctx, k, method)
		}
	}
}

// refresh asks every server again.
func (c *catalogue) refresh(ctx context.Context, kinds []kind, method string) {
	for _, k := range kinds {
		c.load(ctx, k, method)
	}
}

// changed is a server's list_changed, heard on this session's upstream
// session: the server's lists of k are dropped from the list cache for
// every agent, the other sessions that hold one read theirs again, and
// so does this one.
func (c *catalogue) changed(server string, k kind) {
	kinds := []kind{k}
	if k == kindResources {
		kinds = append(kinds, kindTemplates)
	}
	for _, o := range c.s.g.lists.changed(server, kinds, c) {
		o.reload(server, k)
	}
	c.reload(server, k)
}

// reload asks server's list of k (and of templates with resources)
// again, and the client hears list_changed even if the merged list looks
// the same (the server said it changed, and a client may re-read what it
// knows).
func (c *catalogue) reload(server string, k kind) {
	go func() {
		c.loadFor(context.Background(), k, "notifications/"+map[kind]string{kindTools: "tools", kindPrompts: "prompts", kindResources: "resources"}[k]+"/list_changed", server)
		if k == kindResources {
			c.loadFor(context.Background(), kindTemplates, "notifications/resources/list_changed", server)
		}
	}()
}

// load asks every server for its list of k, in parallel, each within its
// own timeout: one slow or dead server delays the answer by its timeout
// at most, and the answer lists the servers that answered.
func (c *catalogue) load(ctx context.Context, k kind, method string) { c.loadFor(ctx, k, method, "") }

// loadFor is load on behalf of changed, a server that said its list
// changed: the client hears list_changed even when the merged list looks
// the same (the server said so, and a client may re-read what it knows).
func (c *catalogue) loadFor(ctx context.Context, k kind, method, changed string) {
	c.loadMu[k].Lock()
	defer c.loadMu[k].Unlock()
	e := c.s.g.engine()
	servers := e.MCP().GatewayServers()
	got := make([]*serverList, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, b := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tctx, cancel := context.WithTimeout(ctx, b.Timeout)
			defer cancel()
			key := listKey{agent: c.s.who.Agent, server: b.Name, k: k, stateless: c.s.stateless}
			got[i], errs[i] = c.s.g.lists.get(tctx, e, key, c, func(ctx context.Context) (*serverList, error) {
				items, err := c.s.list(ctx, b.Name, k)
				if err != nil {
					return nil, err
				}
				return newServerList(k, b, items), nil
			})
			if errs[i] != nil && tctx.Err() != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("no answer within %s", b.Timeout)
			}
		}()
	}
	wg.Wait()
	lists := make(map[string]*serverList, len(servers))
	for i, b := range servers {
		if errs[i] != nil {
			if ctx.Err() == nil {
				c.s.g.unavailable(c.s.who, b.Name, method, errs[i])
			}
			continue
		}
		lists[b.Name] = got[i]
	}
	c.mu.Lock()
	// The same lists (the cache's, unchanged) as the catalogue was built
	// from, and no server said its list changed: nothing to register.
	same := changed == "" && c.loaded[k] && sameLists(c.built[k], lists)
	c.lists[k], c.loaded[k] = lists, true
	c.mu.Unlock()
	if same {
		return
	}
	c.rebuild(k, servers, changed)
	c.mu.Lock()
	c.built[k] = lists
	c.mu.Unlock()
}

// sameLists reports whether a and b hold the very same lists.
func sameLists(a, b map[string]*serverList) bool {
	if len(a) != len(b) {
		return false
	}
	for s, l := range a {
		if b[s] != l {
			return false
		}
	}
	return true
}

// list is one server's whole list of k (every page).
func (s *session) list(ctx context.Context, server string, k kind) ([]any, error) {
	u, err := s.upstream(server)
	if err != nil {
		return nil, err
	}
	var out []any
	err = u.do(ctx, func(ctx context.Context, cs *sdk.ClientSession) error {
		out = out[:0]
		caps := cs.InitializeResult().Capabilities
		if caps == nil {
			return nil
		}
		switch {
		case k == kindTools && caps.Tools != nil:
			for t, err := range cs.Tools(ctx, nil) {
				if err != nil {
					return err
				}
				out = append(out, t)
			}
		case k == kindPrompts && caps.Prompts != nil:
			for p, err := range cs.Prompts(ctx, nil) {
				if err != nil {
					return err
				}
				out = append(out, p)
			}
		case k == kindResources && caps.Resources != nil:
			for r, err := range cs.Resources(ctx, nil) {
				if err != nil {
					return err
				}
				out = append(out, r)
			}
		case k == kindTemplates && caps.Resources != nil:
			for r, err := range cs.ResourceTemplates(ctx, nil) {
				if err != nil {
					return err
				}
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// entry is one item of a server's list as the catalogue names it.
type entry struct {
	key   string // the catalogue's name (the URI, for resources)
	route route
	item  any    // the item renamed for the client
	sig   string // route and item: what tells a changed entry (newServerList)
}

// rebuild merges the servers' lists of k and registers the difference on
// the session's server.
func (c *catalogue) rebuild(k kind, servers []rules.ServerBinding, changed string) {
	c.mu.Lock()
	lists := c.lists[k]
	c.mu.Unlock()
	var all []entry
	owners := map[string][]string{}
	for _, b := range servers {
		l := lists[b.Name]
		if l == nil {
			continue
		}
		for _, e := range l.entries {
			all = append(all, e)
			owners[e.key] = append(owners[e.key], b.Name)
		}
	}
	want := map[string]entry{}
	for _, e := range all {
		if o := owners[e.key]; len(o) > 1 {
			c.collided(k, e.key, o)
			continue
		}
		want[e.key] = e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var gone []string
	for key := range c.reg[k] {
		if _, ok := want[key]; !ok {
			gone = append(gone, key)
			delete(c.reg[k], key)
			delete(c.routes[k], key)
		}
	}
	c.s.remove(k, gone)
	touched := len(gone) > 0
	var again *entry // one of changed's entries, to say list_changed with
	for key, e := range want {
		sig := e.sig
		if c.reg[k][key] == sig {
			if e.route.server == changed && again == nil {
				again = &e
			}
			continue
		}
		touched = true
		if err := c.s.add(k, e); err != nil {
			c.s.g.unavailable(c.s.who, e.route.server, "list", err)
			continue
		}
		c.reg[k][key], c.routes[k][key] = sig, e.route
	}
	if !touched && again != nil {
		c.s.add(k, *again) // the same entry again: the SDK says list_changed
	}
}

func (c *catalogue) collided(k kind, key string, servers []string) {
	c.mu.Lock()
	said := c.reported[kindNames[k]+key]
	c.reported[kindNames[k]+key] = true
	c.mu.Unlock()
	if !said {
		c.s.g.collision(c.s.who, kindNames[k], key, servers)
	}
}

// lookup is where the catalogue's key of kind k goes.
func (c *catalogue) lookup(k kind, key string) (route, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.routes[k][key]
	return r, ok
}

// rename is it as the client sees it: a copy with the catalogue's name.
func rename(k kind, gw rules.Serving, server string, it any) (entry, bool) {
	switch k {
	case kindTools:
		t := *it.(*sdk.Tool)
		r := route{server, t.Name}
		t.Name = gw.Name(t.Name)
		// The schemas as JSON text, encoded once here for every listing
		// of every session that shares the list: the SDK client decodes
		// them into maps, which encoding/json would sort and walk again
		// at each tools/list (most of a listing's cost).
		t.InputSchema, t.OutputSchema = rawJSON(t.InputSchema), rawJSON(t.OutputSchema)
		return entry{key: t.Name, route: r, item: &t}, true
	case kindPrompts:
		p := *it.(*sdk.Prompt)
		r := route{server, p.Name}
		p.Name = gw.Name(p.Name)
		return entry{key: p.Name, route: r, item: &p}, true
	case kindResources:
		res := *it.(*sdk.Resource)
		res.Name = gw.Name(res.Name)
		return entry{key: res.URI, route: route{server, res.URI}, item: &res}, true
	case kindTemplates:
		t := *it.(*sdk.ResourceTemplate)
		t.Name = gw.Name(t.Name)
		return entry{key: t.URITemplate, route: route{server, t.URITemplate}, item: &t}, true
	}
	return entry{}, false
}

// rawJSON is v as JSON text (nil stays nil; what cannot be encoded
// stays as it is, for AddTool to refuse).
func rawJSON(v any) any {
	switch v.(type) {
	case nil, json.RawMessage:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	return json.RawMessage(b)
}

// add registers e on the session's server. The SDK panics on what it
// refuses (a tool whose input schema is not an object): that is an
// error here, and the entry is left out.
func (s *session) add(k kind, e entry) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s %s refused: %v", kindNames[k], e.key, p)
		}
	}()
	switch k {
	case kindTools:
		s.srv.AddTool(e.item.(*sdk.Tool), s.callTool(e.route))
	case kindPrompts:
		s.srv.AddPrompt(e.item.(*sdk.Prompt), s.getPrompt(e.route))
	case kindResources:
		s.srv.AddResource(e.item.(*sdk.Resource), s.readResource(e.route.server))
	case kindTemplates:
		s.srv.AddResourceTemplate(e.item.(*sdk.ResourceTemplate), s.readResource(e.route.server))
	default:
		return errors.New("unknown list")
	}
	return nil
}

func (s *session) remove(k kind, keys []string) {
	if len(keys) == 0 {
		return
	}
	switch k {
	case kindTools:
		s.srv.RemoveTools(keys...)
	case kindPrompts:
		s.srv.RemovePrompts(keys...)
	case kindResources:
		s.srv.RemoveResources(keys...)
	case kindTemplates:
		s.srv.RemoveResourceTemplates(keys...)
	}
}
