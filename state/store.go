package state

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Store is the runtime state the MCP guard reads and writes. Its methods
// are safe for concurrent use.
type Store interface {
	// PutSession records a session, or updates the one with the same key
	// (keeping its Created time).
	PutSession(Session) error
	// Session returns the session with key k.
	Session(k SessionKey) (Session, bool)
	// TouchSession marks the session as seen now; it reports whether the
	// session exists. It is not a write: call it on every message.
	TouchSession(k SessionKey) bool
	// DeleteSession forgets the session and every request in flight in it
	// (a DELETE, or the end of a legacy GET stream). Deleting a session
	// that does not exist is not an error.
	DeleteSession(k SessionKey) error

	// BeginRequest records a request waiting for its response. It fails
	// with ErrDuplicateID when the session already has a request with the
	// same raw id in flight, and with ErrFull past the per-session bound.
	BeginRequest(Request) error
	// EndRequest removes and returns the request in flight in session k
	// with raw id id, as the response to it is seen.
	EndRequest(k SessionKey, id []byte) (Request, bool)
	// InFlight returns that request without ending it: the guard ends it
	// only once the answer has reached the client, so that an answer lost
	// with a cut stream still matches when the server replays it.
	InFlight(k SessionKey, id []byte) (Request, bool)

	// SetToolHints records the annotation hints (a bit set defined by
	// the policy) a server listed for a tool; ToolHints returns them, 0
	// when the tool was never listed.
	SetToolHints(server, tool string, hints uint8)
	ToolHints(server, tool string) uint8
	// SetToolParams records the x-mcp-header parameter declarations a
	// server listed for a tool (none forgets them); ToolParams returns
	// them, false when there are none.
	SetToolParams(server, tool string, p ToolParams)
	ToolParams(server, tool string) (ToolParams, bool)

	// CheckPin compares the hash of a tool's definition with the pin for
	// server and tool, pinning it on first sight (trust on first use) and
	// recording a change. PinUnchecked means it could not (the store is
	// full or closed, or server is empty): the tool must not pass.
	CheckPin(server, tool string, h Hash) PinResult
	// MigratePin replaces the hash of the pin for server and tool with
	// to, keeping whether it is accepted, when that hash is from: for a
	// pin written under an older version of the guard's definition hash,
	// seen again with the very definition it pinned. It reports whether
	// it did.
	MigratePin(server, tool string, from, to Hash) bool
	// Pin returns the pin for server and tool: a tools/call checks
	// Accepted, since the call does not carry the definition.
	Pin(server, tool string) (Pin, bool)
	// Pins returns every pin, sorted by server then tool.
	Pins() []Pin
	// AcceptPin accepts the changed definition pinned for server and tool.
	// It fails with ErrNoPin or ErrNothingToAccept.
	AcceptPin(server, tool string) (Pin, error)
	// Reload takes in a change made to the persisted pins by another
	// process (agentg mcp pins accept, or an edit). On error the pins in
	// force stay as they were.
	Reload() error

	// ObserveServer records a sighting of a server in the inventory, and
	// reports whether it is the server's first (in this run or, with a
	// data directory, any earlier one). When the sighting adds nothing it
	// is not a write, so the guard may call it on every exchange.
	ObserveServer(ServerSighting) (first bool, err error)
	// CountCall counts a tools/call in the inventory (not a write).
	CountCall(server, tool string)
	// Snapshot returns the inventory as it stands.
	Snapshot() Inventory

	// PutLink remembers what a later request will refer back to (a
	// task's creating call, an input_required call); Link finds it until
	// it expires. PutLink fails with ErrFull past Options.MaxLinks.
	PutLink(Link) error
	Link(kind LinkKind, server, key string) (Link, bool)

	// Close stops background work and writes what is persisted one last
	// time. Methods called after Close fail or answer as a full store.
	Close() error
}

// Errors the store returns, wrapped with context; test with errors.Is.
var (
	ErrDuplicateID     = errors.New("JSON-RPC id already in flight in this session")
	ErrFull            = errors.New("state store full")
	ErrInvalid         = errors.New("invalid state key")
	ErrNoPin           = errors.New("no such pin")
	ErrNothingToAccept = errors.New("nothing to accept")
	ErrClosed          = errors.New("state store closed")
)

// SessionKey names a session. Server is the policy's binding name for the
// server; ID is the Mcp-Session-Id the server assigned or, for a legacy
// (2024-11-05) HTTP+SSE session (Legacy set), the endpoint URL the server
// announced on its GET stream, in the one form the guard uses both when
// the stream announces it and when a POST arrives (absolute, resolved
// against the stream's URL). A request outside any session (stateless
// servers) needs a key of the guard's choosing, such as its exchange id:
// an empty ID is refused, so that unrelated clients can never share one
// id space.
type SessionKey struct {
	Server string
	ID     string
	Legacy bool
}

func (k SessionKey) valid() error {
	if k.Server == "" || k.ID == "" {
		return fmt.Errorf("%w: session needs a server and an id (got %q, %q)", ErrInvalid, k.Server, k.ID)
	}
	return nil
}

// ServerInfo is serverInfo as the server reported it in its initialize (or
// discovery) result: recorded for people, never trusted as identity.
type ServerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Session is an MCP session as the guard saw it begin.
type Session struct {
	Key      SessionKey
	Agent    string // the agent whose session it is
	Revision string // the protocol revision negotiated, once known
	// Elicitation: the client declared the elicitation capability in its
	// initialize, so agentg may ask its user (in-band approval).
	Elicitation bool
	Server      ServerInfo // as reported, once known
	Created     time.Time  // set by the store when first put
	LastSeen    time.Time  // set by the store: PutSession and TouchSession
	// Stream is the guard's handle to the session's open legacy GET
	// stream, where the errors for denied POSTs are injected. The store
	// keeps it and hands it back; it never looks inside. A session with a
	// Stream does not expire for idleness: the guard deletes it when the
	// stream ends.
	Stream any
}

// Request is a JSON-RPC request in flight: sent upstream, its response not
// yet seen.
type Request struct {
	Session SessionKey
	// ID is the request's id exactly as its raw JSON bytes (`1`, `"1"`);
	// the store keeps a copy.
	ID      []byte
	Method  string
	Tool    string    // the tool of a tools/call; empty otherwise
	Agent   string    // who sent it
	Start   time.Time // when it was sent; zero means now
	EventID string    // the id of the request's event, to link the outcome to it
}

// PinResult is the answer of CheckPin. The zero value, PinUnchecked, never
// lets a tool pass.
type PinResult uint8

const (
	// PinUnchecked: the store could not check or record the pin.
	PinUnchecked PinResult = iota
	// PinNew: first sight; the definition is now pinned.
	PinNew
	// PinSame: the definition is the one first pinned.
	PinSame
	// PinChanged: the definition differs from the accepted one and has
	// not been accepted; an alert, and with `pinning: deny` a refusal.
	PinChanged
	// PinChangedAccepted: the definition changed since first seen, and
	// what it is now is accepted (by `agentg mcp pins accept`, or because
	// it went back to the accepted definition).
	PinChangedAccepted
)

func (r PinResult) String() string {
	switch r {
	case PinNew:
		return "new"
	case PinSame:
		return "same"
	case PinChanged:
		return "changed"
	case PinChangedAccepted:
		return "changed-accepted"
	}
	return "unchecked"
}

// Hash is the SHA-256 of a tool's definition (the guard computes it over
// the definition's canonical form). Its text form is lowercase hex.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash, which stands for none.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes exactly 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash decodes a hash written as 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("sha256 %q: want %d hex digits", s, 2*len(h))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("sha256 %q: %w", s, err)
	}
	return h, nil
}

// Pin is what the store remembers of a tool's definition.
type Pin struct {
	Server string `json:"server"` // the policy's binding name
	Tool   string `json:"tool"`
	// Hash is the definition last seen.
	Hash Hash `json:"sha256"`
	// Previous is the definition before the last change; zero until the
	// definition first changes.
	Previous Hash `json:"previous_sha256,omitzero"`
	// Accepted says Hash is trusted: the first definition seen is (trust
	// on first use); a changed one is once accepted.
	Accepted  bool      `json:"accepted"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Result is what CheckPin answers for a tool whose definition is p.Hash.
func (p Pin) Result() PinResult {
	switch {
	case !p.Accepted:
		return PinChanged
	case p.Previous.IsZero():
		return PinSame
	}
	return PinChangedAccepted
}

// ServerSighting is one sighting of a server for the inventory.
type ServerSighting struct {
	Server   string     // the policy's binding name
	URL      string     // where it was reached
	Info     ServerInfo // as reported; zero when not (yet) known
	Revision string     // negotiated protocol revision; empty when not known
}

// Inventory is the servers and tools seen, as the store writes it to
// InventoryFile and Snapshot returns it.
type Inventory struct {
	Version int               `json:"version"`
	Written time.Time         `json:"written"`
	Servers []InventoryServer `json:"servers"`
}

// InventoryServer is one server (one policy binding) in the inventory.
type InventoryServer struct {
	Name      string     `json:"name"`
	URLs      []string   `json:"urls"`
	Info      ServerInfo `json:"server_info"`
	Revisions []string   `json:"revisions"`
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	// UnlistedCalls counts calls to tools the server never listed.
	UnlistedCalls uint64          `json:"unlisted_calls"`
	Tools         []InventoryTool `json:"tools"`
	// Egress are the hosts its tools reached (servers agentg started;
	// egress.go).
	Egress []InventoryEgress `json:"egress,omitempty"`
}

// InventoryTool is one tool of a server in the inventory.
type InventoryTool struct {
	Name      string    `json:"name"`
	Hash      Hash      `json:"sha256"`
	Accepted  bool      `json:"accepted"`
	Changed   bool      `json:"changed"` // its definition changed since first seen
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Calls     uint64    `json:"calls"`
}
