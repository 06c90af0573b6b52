//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package state

import (
	"fmt"
	"os"
	"syscall"
)

// lockPath takes an exclusive advisory lock (flock) on path, creating it,
// and returns its release. Processes that write PinsFile hold it for
// their read-modify-write.
func lockPath(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
