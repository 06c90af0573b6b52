//go:build unix

package filetrust

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses what neither agentg's effective user nor root owns.
func checkOwner(what, path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil // no owner to check on this system
	}
	euid := os.Geteuid()
	if st.Uid == 0 || int(st.Uid) == euid {
		return nil
	}
	return fmt.Errorf("%s %s is owned by uid %d, not by agentg's user (uid %d) or root: %w: another user could have written it (chown %d %s, or replace it)",
		what, path, st.Uid, euid, ErrUntrusted, euid, path)
}
