package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Defaults for Options' zero values.
const (
	DefaultRequestTTL            = 10 * time.Minute
	DefaultMaxInFlightPerSession = 1024
	DefaultMaxSessions           = 1 << 16
	DefaultSessionIdleTTL        = 24 * time.Hour
	DefaultMaxServers            = 4096
	DefaultMaxToolsPerServer     = 10000
	DefaultWriteInterval         = 30 * time.Second
	DefaultLinkTTL               = time.Hour
	DefaultMaxLinks              = 1 << 16
)

// Per-server bounds on the inventory's lists; the most recent are kept.
const (
	maxURLsPerServer      = 16
	maxRevisionsPerServer = 16
)

// Options configure a Memory store. The zero value keeps everything in
// memory with the defaults above.
type Options struct {
	// DataDir is where PinsFile and InventoryFile live (created 0700 when
	// missing). Empty keeps pins and inventory in memory only.
	DataDir string
	// RequestTTL is how long a request waits for its response before it
	// is forgotten (and OnExpire called).
	RequestTTL time.Duration
	// MaxInFlightPerSession bounds the requests in flight in one session.
	MaxInFlightPerSession int
	// MaxSessions bounds the sessions held; SessionIdleTTL is how long a
	// session without a Stream is kept after it was last seen.
	MaxSessions    int
	SessionIdleTTL time.Duration
	// MaxServers and MaxToolsPerServer bound the inventory and the pins.
	MaxServers        int
	MaxToolsPerServer int
	// LinkTTL bounds how long a link (a task's creating call, an
	// input_required call awaiting its retry) is kept; MaxLinks bounds
	// how many are.
	LinkTTL  time.Duration
	MaxLinks int
	// SweepInterval is how often expired requests and idle sessions are
	// dropped; 0 means RequestTTL/4, clamped to [100ms, 30s].
	SweepInterval time.Duration
	// WriteInterval is how often the inventory (and the pins' last-seen
	// times) are written when they changed; 0 means DefaultWriteInterval,
	// negative disables background writes (Close still writes).
	WriteInterval time.Duration
	// OnExpire is called, outside any lock, with each request that expired
	// without a response. Nil ignores them.
	OnExpire func(Request)
	// OnError receives errors of background work and of saving pins (a
	// pin is decided in memory even when the file cannot be written).
	// Nil drops them.
	OnError func(error)
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.RequestTTL <= 0 {
		o.RequestTTL = DefaultRequestTTL
	}
	if o.MaxInFlightPerSession <= 0 {
		o.MaxInFlightPerSession = DefaultMaxInFlightPerSession
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SessionIdleTTL <= 0 {
		o.SessionIdleTTL = DefaultSessionIdleTTL
	}
	if o.MaxServers <= 0 {
		o.MaxServers = DefaultMaxServers
	}
	if o.MaxToolsPerServer <= 0 {
		o.MaxToolsPerServer = DefaultMaxToolsPerServer
	}
	if o.LinkTTL <= 0 {
		o.LinkTTL = DefaultLinkTTL
	}
	if o.MaxLinks <= 0 {
		o.MaxLinks = DefaultMaxLinks
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = min(max(o.RequestTTL/4, 100*time.Millisecond), 30*time.Second)
	}
	if o.WriteInterval == 0 {
		o.WriteInterval = DefaultWriteInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Memory is the Store for one process, on go-memdb.
type Memory struct {
	opts Options
	db   *memdb.MemDB

	// counts of the session and request tables, changed only inside
	// memdb write transactions (lock order: memdb writer, then countMu).
	countMu  sync.Mutex
	sessions int
	inflight map[string]int // by encoded session key
	links    int

	// pinMu serialises pin writes and guards pinGen and pinCounts (lock
	// order: saveMu, pinMu, memdb writer).
	pinMu     sync.Mutex
	pinGen    uint64         // bumped by every pin change in memory
	pinCounts map[string]int // pins per server
	// saveMu serialises reading and writing PinsFile in this process.
	saveMu   sync.Mutex
	savedGen uint64      // pinGen as of the last write or load of the file
	pinStat  os.FileInfo // the file as last written or loaded; nil if none
	touched  atomic.Bool // a pin's last-seen time moved since the last write

	serverMu sync.Mutex // serialises server writes (then memdb writer)
	invDirty atomic.Bool
	invMu    sync.Mutex // serialises inventory writes

	hints  hintTable
	params paramTable

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

var _ Store = (*Memory)(nil)

// NewMemory returns a store. With a DataDir it loads the pins (an
// unreadable pins file is an error) and the inventory (a damaged one is
// reported to OnError and started afresh), and starts the background work
// that Close stops.
func NewMemory(opts Options) (*Memory, error) {
	opts.setDefaults()
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	m := &Memory{
		opts:      opts,
		db:        db,
		inflight:  make(map[string]int),
		pinCounts: make(map[string]int),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("state: data directory: %w", err)
		}
		if err := m.Reload(); err != nil {
			return nil, err
		}
		if err := m.loadInventory(); err != nil {
			m.report(err)
		}
	}
	go m.background()
	return m, nil
}

func (m *Memory) now() time.Time { return m.opts.Now() }

func (m *Memory) report(err error) {
	if err != nil && m.opts.OnError != nil {
		m.opts.OnError(err)
	}
}

// background sweeps expired entries and writes the inventory until Close.
func (m *Memory) background() {
	defer close(m.done)
	sweep := time.NewTicker(m.opts.SweepInterval)
	defer sweep.Stop()
	var write <-chan time.Time
	if m.opts.WriteInterval > 0 && m.opts.DataDir != "" {
		t := time.NewTicker(m.opts.WriteInterval)
		defer t.Stop()
		write = t.C
	}
	for {
		select {
		case <-m.stop:
			return
		case <-sweep.C:
			m.Expire(m.now())
			m.expireLinks(m.now())
		case <-write:
			m.report(m.flush(false))
		}
	}
}

// flush writes the inventory and the pins' last-seen times if they moved
// (or always, with force).
func (m *Memory) flush(force bool) error {
	var errs []error
	if force || m.invDirty.Load() {
		errs = append(errs, m.WriteInventory())
	}
	if force || m.touched.Load() {
		errs = append(errs, m.savePins(0, true))
	}
	return errors.Join(errs...)
}

// Close stops the background work and writes the inventory and the pins.
func (m *Memory) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		if m.opts.DataDir != "" {
			err = m.flush(true)
		}
		m.closed.Store(true)
	})
	return err
}

// Table and index names.
const (
	tableSession = "session"
	tableRequest = "request"
	tablePin     = "pin"
	tableServer  = "server"
	tableLink    = "link"
	indexID      = "id"
)

// keyed is a record whose primary key it computes once, at creation.
type keyed interface{ memKey() string }

// keyIndex indexes records by their memKey; its arguments are keys already
// encoded (appendKey), and it supports prefix scans.
type keyIndex struct{}

func (keyIndex) FromObject(obj any) (bool, []byte, error) {
	k, ok := obj.(keyed)
	if !ok {
		return false, nil, fmt.Errorf("state: %T has no key", obj)
	}
	return true, []byte(k.memKey()), nil
}

func (keyIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("state: key index takes one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("state: key index argument is %T, not string", args[0])
	}
	return []byte(s), nil
}

func (k keyIndex) PrefixFromArgs(args ...any) ([]byte, error) { return k.FromArgs(args...) }

func schema() *memdb.DBSchema {
	id := func() *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: indexID, Unique: true, Indexer: keyIndex{}}
	}
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableSession: {Name: tableSession, Indexes: map[string]*memdb.IndexSchema{indexID: id()}},
		// One index only: each index doubles the cost of a write, and a
		// request is written twice (begin, end). Expiry scans instead.
		tableRequest: {Name: tableRequest, Indexes: map[string]*memdb.IndexSchema{indexID: id()}},
		tablePin:     {Name: tablePin, Indexes: map[string]*memdb.IndexSchema{indexID: id()}},
		tableServer:  {Name: tableServer, Indexes: map[string]*memdb.IndexSchema{indexID: id()}},
		tableLink:    {Name: tableLink, Indexes: map[string]*memdb.IndexSchema{indexID: id()}},
	}}
}

// appendKey appends s length-prefixed, so that concatenated fields can
// never be read another way and a field's encoding is a prefix only of
// keys that start with that same field.
func appendKey(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func sessionKeyString(k SessionKey) string {
	b := make([]byte, 0, len(k.Server)+len(k.ID)+8)
	b = appendKey(b, k.Server)
	if k.Legacy {
		b = append(b, 'L')
	} else {
		b = append(b, 'S')
	}
	return string(appendKey(b, k.ID))
}

func requestKeyString(session string, id []byte) string {
	return session + string(id)
}

func pinKeyString(server, tool string) string {
	b := make([]byte, 0, len(server)+len(tool)+4)
	return string(appendKey(appendKey(b, server), tool))
}

func serverKeyString(server string) string {
	return string(appendKey(make([]byte, 0, len(server)+2), server))
}

// first looks key up in table in a read transaction (no lock).
func (m *Memory) first(table, key string) any {
	obj, err := m.db.Txn(false).First(table, indexID, key)
	if err != nil {
		return nil // only a schema error, which the tests rule out
	}
	return obj
}
