//go:build unix

package audit

import (
	"os"

	"golang.org/x/sys/unix"
)

// appendOnly reports whether f was opened O_APPEND: only then is cutting
// it back safe, since every write goes to its end whatever the offset (a
// shell's `> file` is not, and a cut would leave the offset past the end,
// the next write after a hole).
func appendOnly(f *os.File) bool {
	fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_APPEND != 0
}
