// Package filetrust decides whether agentg may trust a file it did not
// just write itself: a secret (the admin token, the approvals webhook
// secret, the CA key) or the data directory that holds agentg's own.
//
// The contract:
//   - A secret is read through ReadSecret, which opens the file (following
//     symlinks, so that a Kubernetes secret mount works) and then checks
//     what it opened, by fstat on the descriptor, not the name: a regular
//     file, owned by agentg's effective user or by root, with none of the
//     permission bits the caller forbids (group and others for a file
//     agentg generated, others for one an operator provides, so that a
//     group of operators may share it). Checking the descriptor means a
//     file swapped between the check and the read is the file checked.
//   - A data directory is checked by CheckDir before anything in it is
//     read: owned by agentg's effective user or root, writable by neither
//     group nor others, and every directory above it owned by the
//     effective user or root and writable by group or others only when
//     sticky (as /tmp is): otherwise another local user could plant a
//     token, a CA or an address file there, or rename the directory away
//     and put theirs in its place.
//   - Every refusal says which file, what is wrong and the command that
//     fixes it (chmod, chown).
package filetrust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Rule is what a secret file must be.
type Rule struct {
	// Forbidden are the permission bits the file must not have.
	Forbidden fs.FileMode
	// AnyOwner skips the owner check: for a client (the CLI) reading a
	// token agentg wrote, whose owner is agentg's user, not the
	// client's. What agentg itself trusts is never read with it.
	AnyOwner bool
}

// The rules for what agentg trusts.
var (
	// Generated is for files agentg generates (mode 0600): nobody but
	// their owner has a reason to read them.
	Generated = Rule{Forbidden: 0o077}
	// Provided is for files an operator provides: a group may share
	// them, others may not.
	Provided = Rule{Forbidden: 0o007}
)

// MaxSecret bounds what ReadSecret reads: no secret agentg takes is
// larger, and a device or a huge file is not read whole.
const MaxSecret = 1 << 20

// ReadSecret opens path, checks it as the package doc says and r asks,
// and returns its content. what names the secret
// in errors ("admin token", "approvals webhook secret").
func ReadSecret(what, path string, r Rule) ([]byte, error) {
	// A first look by name keeps a FIFO or a device from being opened
	// (opening a FIFO blocks until someone writes to it).
	pre, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := CheckSecret(what, path, pre, r); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !os.SameFile(pre, fi) {
		return nil, fmt.Errorf("%s %s: %w: it was replaced while agentg read it", what, path, ErrUntrusted)
	}
	if err := CheckSecret(what, path, fi, r); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > MaxSecret {
		return nil, fmt.Errorf("%s %s: larger than %d bytes", what, path, MaxSecret)
	}
	return b, nil
}

// CheckSecret checks fi, the result of Stat on an open secret file (or of
// os.Stat), as ReadSecret does.
func CheckSecret(what, path string, fi fs.FileInfo, r Rule) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s: not a regular file (%s)", what, path, fi.Mode().Type())
	}
	if !r.AnyOwner {
		if err := checkOwner(what, path, fi); err != nil {
			return err
		}
	}
	forbidden := r.Forbidden
	if m := fi.Mode().Perm(); m&forbidden != 0 {
		return fmt.Errorf("%s %s has mode %04o: it must not be readable or writable by %s (chmod %03o %s)",
			what, path, m, who(forbidden), m&^forbidden, path)
	}
	return nil
}

// ErrUntrusted is what CheckDir's refusals wrap.
var ErrUntrusted = errors.New("not trusted")

// CheckDir checks the data directory dir and the directories above it as
// the package doc says. A dir that does not exist yet passes when the
// directories above it do: agentg creates it, mode 0700.
func CheckDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	// Walk up to the first directory that exists; the missing ones are
	// agentg's to create.
	p := abs
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			p = real
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("data directory %s: %w", dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("data directory %s: %w", dir, err)
		}
		p = parent
	}
	self := p == mustEval(abs)
	for {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("data directory %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("data directory %s: %s is not a directory", dir, p)
		}
		if err := checkOwner("data directory "+dir+":", p, fi); err != nil {
			return err
		}
		m := fi.Mode()
		switch {
		case self && m.Perm()&0o022 != 0:
			return fmt.Errorf("data directory %s has mode %04o: %w: another user could plant a token or a CA in it (chmod %03o %s)",
				p, m.Perm(), ErrUntrusted, m.Perm()&^0o022, p)
		case !self && m.Perm()&0o022 != 0 && m&fs.ModeSticky == 0:
			return fmt.Errorf("data directory %s: %s above it has mode %04o: %w: another user could replace the data directory (chmod go-w %s, or use a data directory elsewhere)",
				dir, p, m.Perm(), ErrUntrusted, p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p, self = parent, false
	}
}

func mustEval(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func who(m fs.FileMode) string {
	if m&0o070 != 0 {
		return "group or others"
	}
	return "others"
}
