package state

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
)

// core is what the tables of one Memory share: its options, its memdb
// (one writer lock for all tables), the counts' lock and the flags
// several tables set.
type core struct {
	opts Options
	db   *memdb.MemDB
	// countMu guards the tables' counts, changed only inside memdb write
	// transactions (lock order: memdb writer, then countMu).
	countMu sync.Mutex
	// invDirty: the inventory (which reports the pins too) changed since
	// it was last written.
	invDirty atomic.Bool
	closed   atomic.Bool
}

func (c *core) now() time.Time { return c.opts.Now() }

func (c *core) report(err error) {
	if err != nil && c.opts.OnError != nil {
		c.opts.OnError(err)
	}
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
func (c *core) first(table, key string) any {
	obj, err := c.db.Txn(false).First(table, indexID, key)
	if err != nil {
		return nil // only a schema error, which the tests rule out
	}
	return obj
}
