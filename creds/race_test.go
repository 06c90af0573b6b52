//go:build race

package creds

// raceEnabled is true under the race detector, whose sync.Pool drops a
// quarter of what is put back: the guard's decode buffers then allocate
// at random and an allocation count means nothing.
const raceEnabled = true
