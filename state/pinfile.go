package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentg/agentg/internal/atomicfile"
)

// pinFileVersion is the format of PinsFile this package reads and writes.
const pinFileVersion = 1

// pinFile is PinsFile's content.
type pinFile struct {
	Version int   `json:"version"`
	Pins    []Pin `json:"pins"`
}

// readPinFile reads and checks a pins file; a missing file is no pins.
func readPinFile(path string) ([]Pin, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	var f pinFile
	if err := unmarshalFile(b, &f); err != nil {
		return nil, fmt.Errorf("pins %s: %w", path, err)
	}
	if f.Version != pinFileVersion {
		return nil, fmt.Errorf("pins %s: version %d, this agentg reads version %d", path, f.Version, pinFileVersion)
	}
	seen := make(map[string]bool, len(f.Pins))
	for i, p := range f.Pins {
		switch k := pinKeyString(p.Server, p.Tool); {
		case p.Server == "":
			return nil, fmt.Errorf("pins %s: pin %d has no server", path, i)
		case p.Hash.IsZero():
			return nil, fmt.Errorf("pins %s: pin %d (%s.%s) has no sha256", path, i, p.Server, p.Tool)
		case seen[k]:
			return nil, fmt.Errorf("pins %s: tool %q of server %q pinned twice", path, p.Tool, p.Server)
		default:
			seen[k] = true
		}
		f.Pins[i].FirstSeen, f.Pins[i].LastSeen = utc(p.FirstSeen), utc(p.LastSeen)
	}
	return f.Pins, nil
}

func writePinFile(path string, pins []Pin) error {
	if pins == nil {
		pins = []Pin{}
	}
	b, err := marshalFile(pinFile{Version: pinFileVersion, Pins: pins})
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	if err := atomicfile.Write(path, b, fileMode); err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	return nil
}

func (t *pinTable) pinsPath() string { return filepath.Join(t.opts.DataDir, PinsFile) }
func (t *pinTable) lockPath() string { return filepath.Join(t.opts.DataDir, pinsLockFile) }

// savePins writes PinsFile unless a write since change gen has covered it
// (force writes anyway, for last-seen times). Concurrent callers coalesce:
// one write covers every change made before its snapshot. A change made
// to the file by another process since this one last read it is merged
// first; a file that cannot be read is not overwritten.
func (t *pinTable) savePins(gen uint64, force bool) error {
	if t.opts.DataDir == "" {
		return nil
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	if !force && t.savedGen >= gen {
		return nil
	}
	unlock, err := lockPath(t.lockPath())
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	defer unlock()
	if err := t.reloadLocked(); err != nil {
		return fmt.Errorf("not saving pins over a file that does not load: %w", err)
	}
	t.touched.Store(false)
	t.pinMu.Lock()
	g := t.pinGen
	pins := t.pinsAt(t.db.Txn(false))
	t.pinMu.Unlock()
	if len(pins) == 0 && t.pinStat == nil {
		t.savedGen = g
		return nil // nothing pinned, nothing to write
	}
	path := t.pinsPath()
	if err := writePinFile(path, pins); err != nil {
		t.touched.Store(true)
		return err
	}
	fi, err := statFile(path)
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	t.pinStat, t.savedGen = fi, g
	return nil
}

// Reload answers Store.Reload: when PinsFile changed since this store last
// read or wrote it, its pins replace those in memory, except pins changed
// in memory since (those are newer, and are written next). A pin removed
// from the file is forgotten, so its tool is pinned afresh when next seen.
// It is cheap when the file has not changed (one stat).
func (t *pinTable) Reload() error {
	if t.opts.DataDir == "" {
		return nil
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	if fi, err := statFile(t.pinsPath()); err == nil && sameFile(fi, t.pinStat) {
		return nil
	}
	unlock, err := lockPath(t.lockPath())
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	defer unlock()
	return t.reloadLocked()
}

// reloadLocked is Reload with saveMu and the file lock held.
func (t *pinTable) reloadLocked() error {
	path := t.pinsPath()
	fi, err := statFile(path)
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	if sameFile(fi, t.pinStat) {
		return nil
	}
	var pins []Pin
	if fi != nil {
		if pins, err = readPinFile(path); err != nil {
			return err
		}
	}
	fromFile := make(map[string]Pin, len(pins))
	for _, p := range pins {
		fromFile[pinKeyString(p.Server, p.Tool)] = p
	}

	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	txn := t.db.Txn(true)
	defer txn.Abort()
	it, err := txn.Get(tablePin, indexID)
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		r := obj.(*pinRec)
		fp, inFile := fromFile[r.key]
		delete(fromFile, r.key)
		switch {
		case r.gen > t.savedGen:
			// Changed here since the last write: newer than the file.
		case inFile:
			rec := newPinRec(fp)
			rec.lastSeen, rec.calls, rec.gen = r.lastSeen, r.calls, r.gen
			if t := nanos(fp.LastSeen); t > rec.lastSeen.Load() {
				rec.lastSeen.Store(t)
			}
			err = txn.Insert(tablePin, rec)
		default:
			err = txn.Delete(tablePin, r)
		}
		if err != nil {
			return fmt.Errorf("pins: %w", err)
		}
	}
	for _, p := range fromFile {
		if err := txn.Insert(tablePin, newPinRec(p)); err != nil {
			return fmt.Errorf("pins: %w", err)
		}
	}
	counts := make(map[string]int)
	if it, err = txn.Get(tablePin, indexID); err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		counts[obj.(*pinRec).p.Server]++
	}
	txn.Commit()
	t.pinCounts, t.pinStat = counts, fi
	t.invDirty.Store(true)
	return nil
}

// ReadPins returns the pins recorded in dataDir's PinsFile, sorted by
// server then tool. A missing file is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadPins(dataDir string) ([]Pin, error) {
	path := filepath.Join(dataDir, PinsFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("pins: %w", err)
	}
	pins, err := readPinFile(path)
	if err != nil {
		return nil, err
	}
	sortPins(pins)
	return pins, nil
}

// AcceptPinFile accepts, in dataDir's PinsFile, the changed definition
// pinned for server and tool, as `agentg mcp pins accept` does: the
// running server takes it in on its next Reload (or its next write of the
// file). It fails with ErrNoPin when there is no such pin (or no file) and
// ErrNothingToAccept when the pin is not waiting for acceptance.
func AcceptPinFile(dataDir, server, tool string) (Pin, error) {
	if dataDir == "" {
		return Pin{}, errors.New("pins: no data directory")
	}
	unlock, err := lockPath(filepath.Join(dataDir, pinsLockFile))
	if err != nil {
		return Pin{}, fmt.Errorf("pins: %w", err)
	}
	defer unlock()
	path := filepath.Join(dataDir, PinsFile)
	pins, err := readPinFile(path)
	if err != nil {
		return Pin{}, err
	}
	for i := range pins {
		if pins[i].Server == server && pins[i].Tool == tool {
			p, err := acceptPin(&pins[i], server, tool)
			if err != nil {
				return Pin{}, err
			}
			accepted := *p
			sortPins(pins)
			if err := writePinFile(path, pins); err != nil {
				return Pin{}, err
			}
			return accepted, nil
		}
	}
	return Pin{}, fmt.Errorf("%w for tool %q of server %q in %s", ErrNoPin, tool, server, path)
}
