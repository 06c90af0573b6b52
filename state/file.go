package state

import (
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// File names inside the data directory.
const (
	PinsFile      = "mcp-pins.json"
	InventoryFile = "mcp-inventory.json"
	pinsLockFile  = ".mcp-pins.lock"
)

// fileMode is the mode of every file written here: pins and inventory say
// which tools an organisation's agents use.
const fileMode fs.FileMode = 0o600

// marshalFile is the JSON of a file written here: indented, for people
// who read or edit it.
func marshalFile(v any) ([]byte, error) {
	b, err := json.Marshal(v, jsontext.WithIndent("  "), json.Deterministic(true))
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// unmarshalFile reads a file written here strictly: duplicate or unknown
// members are errors, not guesses.
func unmarshalFile(b []byte, v any) error {
	return json.Unmarshal(b, v, json.RejectUnknownMembers(true))
}

// sameFile reports whether two stats are of one unchanged file (nil for a
// missing file).
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func statFile(path string) (os.FileInfo, error) {
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return fi, nil
}

// nanos and fromNanos carry a time in an atomic.Int64; the zero time is 0
// (its UnixNano would overflow).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
