//go:build race

package rules

// raceEnabled is true under the race detector, whose sync.Pool drops a
// quarter of what is put back: regexp's matchers then allocate at random
// and an allocation count means nothing.
const raceEnabled = true
