// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part, and a crash keeps one of them: every file agentg
// writes for itself (pins, inventory, pending approvals, the CA, the
// admin address and token) goes through here.
//
// Contract: the data is written to a temporary file in the target's
// directory with the requested mode (set with fchmod, so the umask does
// not widen or narrow it), synced, then moved into place (rename for
// Write, link(2) for Create, which never replaces an existing file), and
// the directory is synced so that the new name itself survives a crash.
// The temporary file never outlives the call. Errors are the operating
// system's (*fs.PathError, *os.LinkError), which name the paths; callers
// add what they were writing.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode perm.
func Write(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, true)
}

// Create writes data to path, mode perm, only if path does not exist yet;
// otherwise it fails with an error wrapping fs.ErrExist and path is left
// as it was. Of two processes creating the same file, exactly one wins.
func Create(path string, data []byte, perm fs.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm fs.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// After a rename the name is gone and this fails harmlessly; after a
	// link (or any failure) it removes the temporary name.
	defer os.Remove(tmp)
	if err := fill(f, data, perm); err != nil {
		return err // an *os.PathError naming the temporary file
	}
	if replace {
		err = os.Rename(tmp, path)
	} else {
		err = os.Link(tmp, path)
	}
	if err != nil {
		return err // *LinkError names both paths; errors.Is(err, fs.ErrExist) holds
	}
	syncDir(dir)
	return nil
}

// fill writes data to f with mode perm, syncs and closes it.
func fill(f *os.File, data []byte, perm fs.FileMode) error {
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs a directory so that a rename or link in it is durable.
// Best effort: not every file system syncs directories, and the file is
// in place either way.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
