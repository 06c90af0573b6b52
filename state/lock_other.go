//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package state

// lockPath is a no-op where flock is not available: writers in one
// process still serialise (Memory's saveMu), but `agentg mcp pins accept`
// racing a running server's write may lose one of the two updates.
func lockPath(path string) (unlock func(), err error) {
	return func() {}, nil
}
