package rules

import "testing"

// noAllocs fails t if fn allocates. The count is only asserted without
// the race detector (see raceEnabled); scripts/test.sh runs the NoAlloc
// tests once more without it so that CI still checks them.
func noAllocs(t *testing.T, what string, fn func()) {
	t.Helper()
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, fn); n != 0 {
		t.Errorf("%s: %v allocations", what, n)
	}
}
