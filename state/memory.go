package state

import (
	"errors"
	"fmt"
	"os"
	"sync"
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

// Memory is the Store for one process, on go-memdb. It composes one
// table per job, all on one memdb: sessions and the requests in flight
// in them, pins (and their file), the inventory, links, and the tools'
// hints and parameters. Memory itself only starts them, runs their
// background work and answers the Store interface through them.
type Memory struct {
	c         *core
	sessions  *sessionTable
	pins      *pinTable
	inventory *inventoryTable
	links     *linkTable
	tools     *toolTable

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
	c := &core{opts: opts, db: db}
	m := &Memory{
		c:         c,
		sessions:  &sessionTable{core: c, inflight: make(map[string]int)},
		pins:      &pinTable{core: c, pinCounts: make(map[string]int)},
		inventory: &inventoryTable{core: c},
		links:     &linkTable{core: c},
		tools:     &toolTable{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("state: data directory: %w", err)
		}
		if err := m.pins.Reload(); err != nil {
			return nil, err
		}
		if err := m.inventory.load(); err != nil {
			c.report(err)
		}
	}
	go m.background()
	return m, nil
}

// background sweeps expired entries and writes the inventory until Close.
func (m *Memory) background() {
	defer close(m.done)
	opts := &m.c.opts
	sweep := time.NewTicker(opts.SweepInterval)
	defer sweep.Stop()
	var write <-chan time.Time
	if opts.WriteInterval > 0 && opts.DataDir != "" {
		t := time.NewTicker(opts.WriteInterval)
		defer t.Stop()
		write = t.C
	}
	for {
		select {
		case <-m.stop:
			return
		case <-sweep.C:
			m.sessions.Expire(m.c.now())
			m.links.expire(m.c.now())
		case <-write:
			m.c.report(m.flush(false))
		}
	}
}

// flush writes the inventory and the pins' last-seen times if they moved
// (or always, with force).
func (m *Memory) flush(force bool) error {
	var errs []error
	if force || m.c.invDirty.Load() {
		errs = append(errs, m.inventory.Write())
	}
	if force || m.pins.touched.Load() {
		errs = append(errs, m.pins.savePins(0, true))
	}
	return errors.Join(errs...)
}

// Close stops the background work and writes the inventory and the pins.
func (m *Memory) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		if m.c.opts.DataDir != "" {
			err = m.flush(true)
		}
		m.c.closed.Store(true)
	})
	return err
}
