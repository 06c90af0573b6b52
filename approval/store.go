package approval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/agentg/agentg/internal/atomicfile"
	"github.com/hashicorp/go-memdb"
)

// The store of held calls and of the grants that remember a decision for
// a while. Store is the contract the Broker programs against (a store
// shared by replicas would implement it too); MemoryStore, on go-memdb,
// is the one for a single process.
//
// Contract:
//   - An approval is decided once: DecideApproval moves it from pending to
//     approved, denied, expired or cancelled, and every later decision fails with
//     ErrDecided. Approvers, the timeout and the client going away race
//     through it, so exactly one of them wins.
//   - A decision and the grant it remembers are one step: a Decision
//     with a Grant stores both in one write transaction, or neither (a
//     decision that fails, ErrDecided included, leaves no grant). No
//     other way stores a grant, and Grant never returns one whose
//     approval is on record as anything but approved.
//   - An approved approval passes its call once: UseApproval marks it
//     used, and every later use fails with ErrUsed. The in-band retry
//     (a 2026-07-28 requestState) takes its call through it, whoever
//     approved, so a token replayed passes nothing.
//   - Everything is bounded: pending approvals (MaxPending: past it
//     PutApproval fails with ErrFull, and the caller denies), decided ones
//     kept for GET (MaxDecided, oldest dropped first, and DecidedTTL), and
//     grants (MaxGrants: past it a decision with a grant fails, so
//     nothing is decided or remembered; a grant expires at its Expires).
//   - With a DataDir the ids of pending approvals persist in
//     <data-dir>/approvals-pending.json (PendingFile), written atomically
//     (mode 0600) shortly after each change and on Close, so that a
//     restart can say which held calls it denied (Orphans): a held call
//     never outlives its process, so a pending approval found at start
//     is one the previous run never decided.

// PendingFile is where the pending approvals persist.
const PendingFile = "approvals-pending.json"

// Approval states.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateDenied   = "denied"
	StateExpired  = "expired"
	// StateCancelled: the client went away while its call was held;
	// the call was never sent and cannot be approved any more.
	StateCancelled = "cancelled"
)

// Errors of the approval store; test with errors.Is.
var (
	ErrFull        = errors.New("approvals store full")
	ErrInvalid     = errors.New("invalid approval")
	ErrNoApproval  = errors.New("no such approval")
	ErrDecided     = errors.New("approval already decided")
	ErrNotApproved = errors.New("approval not approved")
	ErrUsed        = errors.New("approval already used")
)

// Approval is one held call, as its approver sees it. Fields may be
// added.
type Approval struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"` // "mcp" or "http"
	Agent  string `json:"agent"`
	Server string `json:"server,omitempty"` // the server's policy name (mcp)
	Tool   string `json:"tool,omitempty"`
	// Args are the call's arguments exactly as they will be sent (after
	// redaction), as JSON text.
	Args   string `json:"args,omitempty"`
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"` // http kind: the request's URL
	// Body is what the approver sees of an http request's body: a
	// bounded preview, redacted, BodyTruncated when cut. BodySize and
	// BodySHA256 are the whole body's, which the approval binds.
	Body          string `json:"body,omitempty"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
	BodySize      int64  `json:"body_size,omitempty"`
	BodySHA256    string `json:"body_sha256,omitempty"`
	// BodyEncoding is the Content-Encoding the preview was decoded
	// from (size and digest stay the body's as sent).
	BodyEncoding string    `json:"body_encoding,omitempty"`
	Rule         string    `json:"rule"`
	Created      time.Time `json:"created"`
	Expires      time.Time `json:"expires"`
	Via          []string  `json:"via"`
	State        string    `json:"state"`
	// Once decided: by whom ("console", "elicitation", "grant",
	// "timeout", "client" (cancelled), "restart", "shutdown"), why, and
	// the scope remembered.
	By      string        `json:"by,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	Scope   string        `json:"scope,omitempty"`
	For     time.Duration `json:"-"`
	Decided time.Time     `json:"decided,omitzero"`
	// Event is the id of the held call's event.
	Event string `json:"event,omitempty"`
	// Session is the MCP session the call came in (server and session
	// id, as the guard keys them): an in-band answer must come from it.
	Session string `json:"-"`
	// GrantKey is the key a remembered grant of this call has (agent,
	// tool and argument digest), set by whoever holds the call.
	GrantKey string `json:"-"`
}

// Decision is what an approver (or the timeout) says about an approval.
type Decision struct {
	State  string // StateApproved, StateDenied, StateExpired or StateCancelled
	By     string
	Reason string
	Scope  string
	For    time.Duration
	// Grant, with State approved only, is remembered in the same write
	// transaction as the decision (its Approval is set to the decided
	// id): both are stored, or neither.
	Grant *Grant
}

// Grant remembers an approval for a while: a later call with the same
// key passes without asking.
type Grant struct {
	Key      string
	Approval string // the approval that made it
	Agent    string
	Expires  time.Time
}

// Store is the state of held calls. Its methods are safe for
// concurrent use.
type Store interface {
	// PutApproval records a pending approval (ID set, State pending);
	// ErrFull past the bound.
	PutApproval(Approval) error
	Approval(id string) (Approval, bool)
	// Pending returns the pending approvals, oldest first.
	Pending() []Approval
	PendingCount() int
	// DecideApproval decides a pending approval once (see the contract).
	DecideApproval(id string, d Decision) (Approval, error)
	// UseApproval marks an approved approval as having passed its call
	// (see the contract); ErrNotApproved when it is not approved.
	UseApproval(id string) (Approval, error)
	// Decided is closed once the approval is decided; nil for an unknown
	// id.
	Decided(id string) <-chan struct{}
	// Grant returns the live grant with key (grants are stored only by
	// DecideApproval, with their approval's decision).
	Grant(key string) (Grant, bool)
	// Orphans returns what the previous run left pending (read from the
	// data directory at start), once; the file is rewritten without
	// them.
	Orphans() []Approval
	Close() error
}

// StoreOptions configure an MemoryStore; zero values are defaults.
type StoreOptions struct {
	DataDir    string
	MaxPending int           // default 10000
	MaxDecided int           // default 4096
	DecidedTTL time.Duration // default 15m
	MaxGrants  int           // default 10000
	// WriteDelay is how long a change waits to be written with the next
	// ones; default 200ms.
	WriteDelay time.Duration
	OnError    func(error)
	Now        func() time.Time
}

type approvalRec struct {
	a    Approval
	done chan struct{} // closed when decided; shared by the record's versions
	used bool          // UseApproval passed its call
}

func (r *approvalRec) memKey() string { return r.a.ID }

type grantRec struct{ g Grant }

func (r *grantRec) memKey() string { return r.g.Key }

const (
	tableApproval = "approval"
	tableGrant    = "grant"
)

// MemoryStore is the Store of one process.
type MemoryStore struct {
	opts    StoreOptions
	db      *memdb.MemDB
	mu      sync.Mutex // with the memdb writer: counts, the decided queue
	pending int
	grants  int
	decided []string // ids, oldest decision first
	orphans []Approval

	dirty   chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an approval store; with a DataDir it reads
// what the previous run left pending (Orphans) and persists the pending
// ids from now on.
func NewMemoryStore(opts StoreOptions) (*MemoryStore, error) {
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10000
	}
	if opts.MaxDecided <= 0 {
		opts.MaxDecided = 4096
	}
	if opts.DecidedTTL <= 0 {
		opts.DecidedTTL = 15 * time.Minute
	}
	if opts.MaxGrants <= 0 {
		opts.MaxGrants = 10000
	}
	if opts.WriteDelay <= 0 {
		opts.WriteDelay = 200 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	id := &memdb.IndexSchema{Name: indexID, Unique: true, Indexer: keyIndex{}}
	db, err := memdb.NewMemDB(&memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableApproval: {Name: tableApproval, Indexes: map[string]*memdb.IndexSchema{indexID: id}},
		tableGrant:    {Name: tableGrant, Indexes: map[string]*memdb.IndexSchema{indexID: {Name: indexID, Unique: true, Indexer: keyIndex{}}}},
	}})
	if err != nil {
		return nil, fmt.Errorf("approvals store: %w", err)
	}
	m := &MemoryStore{opts: opts, db: db, dirty: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("approvals store: data directory: %w", err)
		}
		b, err := os.ReadFile(m.file())
		switch {
		case err == nil:
			var f pendingFile
			if err := unmarshalFile(b, &f); err != nil {
				// Unreadable: the restart cannot say which calls it
				// denied, and says that much.
				m.report(fmt.Errorf("approvals store: %s: %w", m.file(), err))
				m.orphans = []Approval{{ID: "?", Reason: "the pending approvals file could not be read: " + err.Error()}}
			} else {
				for _, r := range f.Pending {
					m.orphans = append(m.orphans, r.approval())
				}
			}
			m.markDirty() // rewritten without them
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("approvals store: %w", err)
		}
	}
	go m.writer()
	return m, nil
}

// pendingFile is PendingFile's shape: what each pending call was, not
// its arguments.
type pendingFile struct {
	Pending []pendingRecord `json:"pending"`
}

type pendingRecord struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	Agent   string    `json:"agent"`
	Server  string    `json:"server,omitempty"`
	Tool    string    `json:"tool,omitempty"`
	Method  string    `json:"method,omitempty"`
	URL     string    `json:"url,omitempty"`
	Rule    string    `json:"rule"`
	Created time.Time `json:"created"`
	Event   string    `json:"event,omitempty"`
}

func recordOf(a Approval) pendingRecord {
	return pendingRecord{ID: a.ID, Kind: a.Kind, Agent: a.Agent, Server: a.Server, Tool: a.Tool,
		Method: a.Method, URL: a.URL, Rule: a.Rule, Created: a.Created, Event: a.Event}
}

func (r pendingRecord) approval() Approval {
	return Approval{ID: r.ID, Kind: r.Kind, Agent: r.Agent, Server: r.Server, Tool: r.Tool,
		Method: r.Method, URL: r.URL, Rule: r.Rule, Created: r.Created, Event: r.Event, State: StatePending}
}

func (m *MemoryStore) file() string { return filepath.Join(m.opts.DataDir, PendingFile) }

func (m *MemoryStore) report(err error) {
	if err != nil && m.opts.OnError != nil {
		m.opts.OnError(err)
	}
}

func (m *MemoryStore) markDirty() {
	if m.opts.DataDir == "" {
		return
	}
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

// writer writes the pending ids a little after they change, so that a
// thousand calls held at once cost a few writes, not a thousand.
func (m *MemoryStore) writer() {
	defer close(m.stopped)
	for {
		select {
		case <-m.stop:
			return
		case <-m.dirty:
			select {
			case <-time.After(m.opts.WriteDelay):
			case <-m.stop:
			}
			m.report(m.write())
		}
	}
}

func (m *MemoryStore) write() error {
	if m.opts.DataDir == "" {
		return nil
	}
	f := pendingFile{Pending: []pendingRecord{}}
	for _, a := range m.Pending() {
		f.Pending = append(f.Pending, recordOf(a))
	}
	for _, a := range m.peekOrphans() {
		f.Pending = append(f.Pending, recordOf(a))
	}
	b, err := marshalFile(f)
	if err != nil {
		return fmt.Errorf("approvals store: %w", err)
	}
	if err := atomicfile.Write(m.file(), b, fileMode); err != nil {
		return fmt.Errorf("approvals store: write %s: %w", m.file(), err)
	}
	return nil
}

func (m *MemoryStore) peekOrphans() []Approval {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.orphans)
}

// Orphans implements Store.
func (m *MemoryStore) Orphans() []Approval {
	m.mu.Lock()
	o := m.orphans
	m.orphans = nil
	m.mu.Unlock()
	m.markDirty()
	return o
}

// PutApproval implements Store.
func (m *MemoryStore) PutApproval(a Approval) error {
	if a.ID == "" {
		return fmt.Errorf("%w: approval without an id", ErrInvalid)
	}
	a.State = StatePending
	txn := m.db.Txn(true)
	defer txn.Abort()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending >= m.opts.MaxPending {
		return fmt.Errorf("%w: %d approvals pending", ErrFull, m.pending)
	}
	if old, _ := txn.First(tableApproval, indexID, a.ID); old != nil {
		return fmt.Errorf("%w: approval id %s in use", ErrInvalid, a.ID)
	}
	m.expireDecidedLocked(txn)
	if err := txn.Insert(tableApproval, &approvalRec{a: a, done: make(chan struct{})}); err != nil {
		return fmt.Errorf("approvals store: put approval: %w", err)
	}
	txn.Commit()
	m.pending++
	m.markDirty()
	return nil
}

// expireDecidedLocked drops decided approvals past MaxDecided or
// DecidedTTL, oldest first.
func (m *MemoryStore) expireDecidedLocked(txn *memdb.Txn) {
	cut := m.opts.Now().Add(-m.opts.DecidedTTL)
	n := 0
	for ; n < len(m.decided); n++ {
		if len(m.decided)-n <= m.opts.MaxDecided {
			obj, _ := txn.First(tableApproval, indexID, m.decided[n])
			if r, ok := obj.(*approvalRec); ok && r.a.Decided.After(cut) {
				break
			}
		}
		txn.Delete(tableApproval, &approvalRec{a: Approval{ID: m.decided[n]}})
	}
	m.decided = m.decided[n:]
}

func (m *MemoryStore) rec(id string) *approvalRec {
	obj, err := m.db.Txn(false).First(tableApproval, indexID, id)
	if err != nil || obj == nil {
		return nil
	}
	return obj.(*approvalRec)
}

// Approval implements Store.
func (m *MemoryStore) Approval(id string) (Approval, bool) {
	if r := m.rec(id); r != nil {
		return r.a, true
	}
	return Approval{}, false
}

// Pending implements Store.
func (m *MemoryStore) Pending() []Approval {
	it, err := m.db.Txn(false).Get(tableApproval, indexID)
	if err != nil {
		return nil
	}
	var out []Approval
	for obj := it.Next(); obj != nil; obj = it.Next() {
		if r := obj.(*approvalRec); r.a.State == StatePending {
			out = append(out, r.a)
		}
	}
	slices.SortFunc(out, func(a, b Approval) int { return a.Created.Compare(b.Created) })
	return out
}

// PendingCount implements Store.
func (m *MemoryStore) PendingCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// writeRec opens a write transaction and finds approval id in it; the
// caller commits or aborts it.
func (m *MemoryStore) writeRec(id string) (*memdb.Txn, *approvalRec, error) {
	txn := m.db.Txn(true)
	obj, err := txn.First(tableApproval, indexID, id)
	if err != nil || obj == nil {
		txn.Abort()
		return nil, nil, fmt.Errorf("%w: %s", ErrNoApproval, id)
	}
	return txn, obj.(*approvalRec), nil
}

// DecideApproval implements Store.
func (m *MemoryStore) DecideApproval(id string, d Decision) (Approval, error) {
	switch d.State {
	case StateApproved, StateDenied, StateExpired, StateCancelled:
	default:
		return Approval{}, fmt.Errorf("%w: decision %q", ErrInvalid, d.State)
	}
	if d.Grant != nil && (d.State != StateApproved || d.Grant.Key == "") {
		return Approval{}, fmt.Errorf("%w: a grant with a %s decision, or without a key", ErrInvalid, d.State)
	}
	txn, old, err := m.writeRec(id)
	if err != nil {
		return Approval{}, err
	}
	defer txn.Abort()
	if old.a.State != StatePending {
		return old.a, fmt.Errorf("%w: %s is %s", ErrDecided, id, old.a.State)
	}
	a := old.a
	a.State, a.By, a.Reason, a.Scope, a.For, a.Decided = d.State, d.By, d.Reason, d.Scope, d.For, m.opts.Now()
	if err := txn.Insert(tableApproval, &approvalRec{a: a, done: old.done}); err != nil {
		return Approval{}, fmt.Errorf("approvals store: decide approval: %w", err)
	}
	m.mu.Lock()
	grants := 0
	if d.Grant != nil {
		g := *d.Grant
		g.Approval = id
		// In the transaction that decides: aborted with it when the
		// grant cannot be stored, so the decision fails whole.
		if grants, err = m.putGrantLocked(txn, g); err != nil {
			m.mu.Unlock()
			return Approval{}, fmt.Errorf("remember approval %s: %w", id, err)
		}
	}
	txn.Commit()
	m.grants += grants
	m.pending--
	m.decided = append(m.decided, id)
	m.mu.Unlock()
	close(old.done)
	m.markDirty()
	return a, nil
}

// UseApproval implements Store.
func (m *MemoryStore) UseApproval(id string) (Approval, error) {
	txn, old, err := m.writeRec(id)
	if err != nil {
		return Approval{}, err
	}
	defer txn.Abort()
	switch {
	case old.a.State != StateApproved:
		return old.a, fmt.Errorf("%w: %s is %s", ErrNotApproved, id, old.a.State)
	case old.used:
		return old.a, fmt.Errorf("%w: %s passed its call already", ErrUsed, id)
	}
	if err := txn.Insert(tableApproval, &approvalRec{a: old.a, done: old.done, used: true}); err != nil {
		return Approval{}, fmt.Errorf("approvals store: use approval: %w", err)
	}
	txn.Commit()
	return old.a, nil
}

// Decided implements Store.
func (m *MemoryStore) Decided(id string) <-chan struct{} {
	if r := m.rec(id); r != nil {
		return r.done
	}
	return nil
}

// putGrantLocked inserts g in txn (m.mu held), dropping expired grants
// first when MaxGrants is reached; ErrFull when there is still no room.
// It returns the change to m.grants, to apply once txn commits.
func (m *MemoryStore) putGrantLocked(txn *memdb.Txn, g Grant) (int, error) {
	now := m.opts.Now()
	old, _ := txn.First(tableGrant, indexID, g.Key)
	delta := 0
	if old == nil && m.grants >= m.opts.MaxGrants {
		// Drop the expired ones first; still full: remember nothing.
		it, err := txn.Get(tableGrant, indexID)
		if err == nil {
			var gone []*grantRec
			for obj := it.Next(); obj != nil; obj = it.Next() {
				if r := obj.(*grantRec); !r.g.Expires.After(now) {
					gone = append(gone, r)
				}
			}
			for _, r := range gone {
				txn.Delete(tableGrant, r)
				delta--
			}
		}
		if m.grants+delta >= m.opts.MaxGrants {
			return 0, fmt.Errorf("%w: %d grants", ErrFull, m.grants)
		}
	}
	if err := txn.Insert(tableGrant, &grantRec{g: g}); err != nil {
		return 0, fmt.Errorf("approvals store: put grant: %w", err)
	}
	if old == nil {
		delta++
	}
	return delta, nil
}

// Grant implements Store.
func (m *MemoryStore) Grant(key string) (Grant, bool) {
	txn := m.db.Txn(false)
	obj, err := txn.First(tableGrant, indexID, key)
	if err != nil || obj == nil {
		return Grant{}, false
	}
	g := obj.(*grantRec).g
	if !g.Expires.After(m.opts.Now()) {
		return Grant{}, false
	}
	// Stored only with its approval's decision; were its approval on
	// record as anything else, it would not be honoured all the same.
	if a, _ := txn.First(tableApproval, indexID, g.Approval); a != nil && a.(*approvalRec).a.State != StateApproved {
		return Grant{}, false
	}
	return g, true
}

// Close writes the pending ids one last time and stops the writer.
func (m *MemoryStore) Close() error {
	m.once.Do(func() { close(m.stop) })
	<-m.stopped
	return m.write()
}
