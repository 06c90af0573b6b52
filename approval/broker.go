// Package approval holds calls for a person's decision: a tools/call or
// an HTTP request an approve rule covers waits, with no byte sent
// upstream, until an approver approves or denies it or its rule's timeout
// denies it. The MCP guard and the proxy hold through a Broker; the admin
// API, the CLI, the console and in-band elicitation decide through it;
// webhook.go tells approvers that something waits; store.go keeps the
// approvals and grants (Store, MemoryStore), persisting the pending ones
// so that a restart can say which it denied.
//
// The contract:
//   - Nothing passes unapproved: a call passes only when its approval's
//     state is approved (by an approver, or by a grant remembered from
//     one). Anything else, a store that cannot hold it included, denies.
//   - Nothing hangs forever: every hold ends at its timeout (expired,
//     which denies), when the client goes away (cancelled, which denies:
//     the approval can no longer be approved), at shutdown
//     (denied) or when decided. A restart denies what was pending, and
//     says so with an event for each (Recover).
//   - An approval is decided once; approvers racing each other and the
//     timeout get ErrDecided, and the call gets the first decision.
//   - The approver sees what will be sent: the arguments after
//     redaction, exactly the bytes forwarded on approval; for an HTTP
//     request its method, URL and a redacted preview of its body, whose
//     digest the approval binds (body.go).
//   - A decision and the grant it remembers are one step (the store's
//     DecideApproval): a deny that wins a race leaves no grant.
//   - Every step is an event of kind "approval" (held, approved, denied,
//     expired, cancelled) naming the held call's event as its parent.
package approval

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/rules"
)

// Scopes an approver may remember an approval for.
const (
	ScopeCall      = "call"       // this call only
	ScopeAgentTool = "agent-tool" // this agent, this tool, these arguments, for a while
)

// Grant bounds.
const (
	DefaultGrantFor = 10 * time.Minute
	MaxGrantFor     = 24 * time.Hour
)

// Errors of the broker, besides the store's (ErrNoApproval,
// ErrDecided); test with errors.Is.
var ErrBadScope = errors.New("bad approval scope")

// Notifier is told about each approval that starts pending (the webhook).
// Pending must not block.
type Notifier interface {
	Pending(Approval)
}

// Config is what a Broker needs; Store and Log are required.
type Config struct {
	Store  Store
	Log    *audit.Logger
	Notify Notifier // nil: none
	Now    func() time.Time
	// TokenKey is the key of the tokens that bind an approval to its
	// call (token.go); nil: a random one for this process.
	TokenKey []byte
}

// Broker holds calls and takes decisions about them. It is safe for
// concurrent use.
type Broker struct {
	cfg Config
	key []byte // token.go
}

// New returns a Broker.
func New(cfg Config) (*Broker, error) {
	if cfg.Store == nil || cfg.Log == nil {
		return nil, errors.New("approval: Config.Store and Config.Log are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := cfg.TokenKey
	if len(key) == 0 {
		key = newTokenKey()
	}
	return &Broker{cfg: cfg, key: key}, nil
}

func (b *Broker) now() time.Time { return b.cfg.Now() }

// Request is one call to hold. Fields may be added.
type Request struct {
	Kind   string // "mcp" or "http"
	Agent  string
	Server string // mcp: the server's policy name
	Tool   string
	// Args are the call's arguments as they will be sent (after
	// redaction); the approver sees them, and a grant binds to them.
	Args []byte
	// Session names the MCP session the call came in, for an in-band
	// answer (elicitation) to be taken only from it.
	Session string
	Method  string // http: the request method
	URL     string // http: the request's URL
	// Body is an http request's whole body as sent (at most MaxBody;
	// body.go): the approval and its grant bind its digest. The
	// approver sees a preview of it, decoded from BodyEncoding (its
	// Content-Encoding) when Decoded holds it, redacted with
	// Redactions.
	Body, Decoded []byte
	BodyEncoding  string
	Redactions    []rules.Redaction
	// Decision is the approve decision that holds the call (its rule and
	// Hold).
	Decision rules.Decision
	// Mask, when set, replaces every credential value agentg holds in
	// what the approver is shown (arguments, URL, body preview) with its
	// secret's name (creds.Guard.Mask); the grant still binds the call as
	// sent.
	Mask func(string) string
	// Event is the held call's own event id; the approval's events name
	// it as their parent. Client, Host and Port are for those events.
	Event  string
	Client string
	Host   string
	Port   uint16
}

// Outcome is how a hold ended.
type Outcome struct {
	Approved bool
	// Approval is the approval as decided (ID empty when a grant passed
	// the call without one).
	Approval Approval
	// By is who decided, Reason why (for the policy's error).
	By, Reason string
}

// Ticket is one held call.
type Ticket struct {
	b     *Broker
	q     Request
	a     Approval
	done  <-chan struct{}
	grant *Grant // the call passes by a remembered approval
	err   error  // the call could not be held: it is denied
}

// Begin holds q: it passes at once under a live grant for the same agent,
// tool and arguments; otherwise it becomes a pending approval, with an
// event, and the notifier is told. Wait on the ticket for the outcome.
func (b *Broker) Begin(q Request) *Ticket {
	t := &Ticket{b: b, q: q}
	h := q.Decision.Hold
	if h == nil {
		h = &rules.Hold{Timeout: rules.DefaultHoldTimeout, Console: true}
	}
	key := grantKey(q)
	if g, ok := b.cfg.Store.Grant(key); ok {
		t.grant = &g
		return t
	}
	now := b.now()
	t.a = Approval{ID: newID(), Kind: q.Kind, Agent: q.Agent, Server: q.Server, Tool: q.Tool,
		Args: string(q.Args), Method: q.Method, URL: q.URL, Rule: q.Decision.Rule,
		Created: now, Expires: now.Add(h.Timeout), Via: h.Via(), State: StatePending,
		Event: q.Event, GrantKey: key, Session: q.Session}
	if q.Mask != nil {
		t.a.Args, t.a.URL = q.Mask(t.a.Args), q.Mask(t.a.URL)
	}
	if q.Kind == "http" {
		shown := q.Body
		if q.BodyEncoding != "" && q.Decoded != nil {
			shown, t.a.BodyEncoding = q.Decoded, q.BodyEncoding
		}
		if q.Mask != nil {
			shown = []byte(q.Mask(string(shown)))
		}
		v := viewBody(shown, q.Redactions)
		sum := sha256.Sum256(q.Body)
		t.a.Body, t.a.BodyTruncated, t.a.BodySize, t.a.BodySHA256 = v.preview, v.truncated, int64(len(q.Body)), hex.EncodeToString(sum[:])
	}
	if err := b.cfg.Store.PutApproval(t.a); err != nil {
		t.err = err
		b.emit(t.a, q, "denied", "deny", "store", "cannot hold the call: "+err.Error(), "", 0)
		return t
	}
	t.done = b.cfg.Store.Decided(t.a.ID)
	b.emit(t.a, q, "held", "approve", "", q.Decision.Reason, "", 0)
	if g, ok := b.cfg.Store.Grant(key); ok {
		// A grant decided between the look above and the hold, after
		// its releaseCovered listed what was pending: released here.
		b.decide(t.a.ID, Decision{State: StateApproved, By: "grant",
			Reason: "approved by grant from approval " + g.Approval, Scope: ScopeCall})
		return t
	}
	if b.cfg.Notify != nil {
		b.cfg.Notify.Pending(t.a)
	}
	return t
}

// ID is the approval's id; "" when the call passed by a grant or could not
// be held.
func (t *Ticket) ID() string {
	if t.grant != nil || t.err != nil {
		return ""
	}
	return t.a.ID
}

// Approval is the approval as it began.
func (t *Ticket) Approval() Approval { return t.a }

// Immediate reports whether Wait will not wait: a grant passed the call,
// or it could not be held.
func (t *Ticket) Immediate() bool { return t.grant != nil || t.err != nil }

// Wait blocks until the approval is decided, its timeout passes (expired:
// denied) or ctx ends (the client went away: denied).
func (t *Ticket) Wait(ctx context.Context) Outcome {
	switch {
	case t.grant != nil:
		return Outcome{Approved: true, By: "grant", Reason: "approved by grant from approval " + t.grant.Approval}
	case t.err != nil:
		return Outcome{By: "store", Reason: "the call could not be held for approval: " + t.err.Error()}
	}
	timer := time.NewTimer(time.Until(t.a.Expires))
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		t.b.decide(t.a.ID, Decision{State: StateExpired, By: "timeout",
			Reason: fmt.Sprintf("no approver decided within %s", t.a.Expires.Sub(t.a.Created).Round(time.Millisecond))})
	case <-ctx.Done():
		// Cancelled, not denied: no approver decided, and none can now.
		t.b.decide(t.a.ID, Decision{State: StateCancelled, By: "client", Reason: "the client went away while the call was held"})
	}
	a, ok := t.b.cfg.Store.Approval(t.a.ID)
	if !ok {
		return Outcome{Approval: t.a, By: "store", Reason: "the approval's record is gone"}
	}
	return Outcome{Approved: a.State == StateApproved, Approval: a, By: a.By, Reason: outcomeReason(a)}
}

func outcomeReason(a Approval) string {
	switch a.State {
	case StateApproved:
		if a.Reason != "" {
			return a.Reason // a grant's, naming its approval
		}
		return "approved by " + a.By
	case StateExpired:
		return "approval " + a.ID + " expired: " + a.Reason
	case StateCancelled:
		return "approval " + a.ID + " cancelled: " + a.Reason
	}
	msg := "approval " + a.ID + " denied by " + a.By
	if a.Reason != "" {
		msg += ": " + a.Reason
	}
	return msg
}

// Approve approves a pending approval: scope call (the default) or
// agent-tool, remembered for forDur (default DefaultGrantFor); by names
// the approver ("console", "elicitation").
func (b *Broker) Approve(id, scope string, forDur time.Duration, by string) (Approval, error) {
	switch scope {
	case "", ScopeCall:
		if forDur != 0 {
			return Approval{}, fmt.Errorf("%w: for applies to scope %s only", ErrBadScope, ScopeAgentTool)
		}
		scope = ScopeCall
	case ScopeAgentTool:
		if forDur == 0 {
			forDur = DefaultGrantFor
		}
		if forDur < time.Second || forDur > MaxGrantFor {
			return Approval{}, fmt.Errorf("%w: for %s is not between 1s and %s", ErrBadScope, forDur, MaxGrantFor)
		}
	default:
		return Approval{}, fmt.Errorf("%w: %q (want %s or %s)", ErrBadScope, scope, ScopeCall, ScopeAgentTool)
	}
	pre, ok := b.cfg.Store.Approval(id)
	if !ok {
		return Approval{}, fmt.Errorf("%w: %s", ErrNoApproval, id)
	}
	if pre.State == StatePending && !allowed(pre.Via, by) {
		return Approval{}, fmt.Errorf("%w: approval %s may be decided via %v, not %s", ErrBadScope, id, pre.Via, by)
	}
	d := Decision{State: StateApproved, By: by, Scope: scope, For: forDur}
	if scope == ScopeAgentTool {
		// One step with the decision: a deny or a timeout that wins the
		// race leaves no grant behind.
		d.Grant = &Grant{Key: pre.GrantKey, Agent: pre.Agent, Expires: b.now().Add(forDur)}
	}
	a, err := b.decide(id, d)
	if err == nil && scope == ScopeAgentTool {
		b.releaseCovered(id, pre.GrantKey)
	}
	return a, err
}

// releaseCovered approves the calls already held that the grant just made
// from approval covers (the same call, asked again before the decision):
// a call that comes after the grant passes at once, and one that came
// before it must not wait for a decision already made. Each gets its
// event, by "grant".
func (b *Broker) releaseCovered(approval, key string) {
	for _, p := range b.cfg.Store.Pending() {
		if p.ID == approval || p.GrantKey != key {
			continue
		}
		b.decide(p.ID, Decision{State: StateApproved, By: "grant",
			Reason: "approved by grant from approval " + approval, Scope: ScopeCall})
	}
}

func allowed(via []string, by string) bool {
	want := "console"
	if by == "elicitation" {
		want = "elicitation"
	}
	for _, v := range via {
		if v == want {
			return true
		}
	}
	return false
}

// Use takes the call an approved approval passes, once (see
// Store.UseApproval): the in-band retry's way through,
// whoever approved.
func (b *Broker) Use(id string) (Approval, error) { return b.cfg.Store.UseApproval(id) }

// Deny denies a pending approval.
func (b *Broker) Deny(id, reason, by string) (Approval, error) {
	if pre, ok := b.cfg.Store.Approval(id); ok && pre.State == StatePending && !allowed(pre.Via, by) {
		return Approval{}, fmt.Errorf("%w: approval %s may be decided via %v, not %s", ErrBadScope, id, pre.Via, by)
	}
	return b.decide(id, Decision{State: StateDenied, By: by, Reason: reason})
}

// decide records a decision and its event.
func (b *Broker) decide(id string, d Decision) (Approval, error) {
	a, err := b.cfg.Store.DecideApproval(id, d)
	if err != nil {
		return a, err
	}
	decision := "deny"
	if a.State == StateApproved {
		decision = "allow"
	}
	b.emit(a, Request{}, a.State, decision, d.By, d.Reason, d.Scope, d.For)
	return a, nil
}

// List returns the pending approvals, oldest first.
func (b *Broker) List() []Approval { return b.cfg.Store.Pending() }

// Get returns an approval, pending or decided (decided ones are kept a
// while).
func (b *Broker) Get(id string) (Approval, bool) { return b.cfg.Store.Approval(id) }

// PendingCount is how many approvals are pending, for the metrics.
func (b *Broker) PendingCount() int { return b.cfg.Store.PendingCount() }

// Recover says, with an event each, which approvals the previous run left
// pending: their calls ended with that run, never sent.
func (b *Broker) Recover() int {
	orphans := b.cfg.Store.Orphans()
	for _, a := range orphans {
		a.State = StateDenied
		b.emit(a, Request{}, "denied", "deny", "restart", "agentg restarted while the call was held: it was never sent", "", 0)
	}
	return len(orphans)
}

// Shutdown denies every pending approval (by "shutdown"): their calls get
// the policy's error before agentg stops.
func (b *Broker) Shutdown() {
	for _, a := range b.cfg.Store.Pending() {
		b.decide(a.ID, Decision{State: StateDenied, By: "shutdown", Reason: "agentg is shutting down"})
	}
}

// emit writes one approval event.
func (b *Broker) emit(a Approval, q Request, action, decision, by, reason, scope string, forDur time.Duration) {
	ev := &audit.Event{ID: b.cfg.Log.NewID(), Parent: a.Event, Time: b.now(), Kind: "approval",
		Agent: a.Agent, Client: q.Client, Host: q.Host, Port: q.Port, Decision: decision, Rule: a.Rule, Reason: reason,
		Approval: &audit.Approval{ID: a.ID, Action: action, By: by, Scope: scope, For: forDur, URL: a.URL}}
	if a.Kind == "http" {
		ev.Method = a.Method
	} else {
		ev.MCP = &audit.MCP{Server: a.Server, Tool: a.Tool, Args: a.Args}
	}
	b.cfg.Log.Log(ev)
}

// newID is an approval id: 80 random bits, so that ids cannot be guessed
// and never repeat across runs.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return "ap-" + base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// grantKey is what a grant binds to: the kind, agent, server and tool (or
// method and URL), and the digest of the arguments as sent (or of the
// whole body). Each field is length-prefixed, so no value can pose as
// another.
func grantKey(q Request) string {
	h := sha256.New()
	for _, f := range []string{q.Kind, q.Agent, q.Server, q.Tool, q.Method, q.URL, string(q.Args), string(q.Body)} {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}
