//go:build race

package proxy

// raceEnabled is true under the race detector, whose sync.Pool drops a
// quarter of what is put back: an allocation count means nothing then.
const raceEnabled = true
