package audit

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"sync/atomic"
)

// idSource hands out event ids: a random prefix chosen when the Logger is
// made, so ids from different runs (or replicas) do not collide, and a
// counter, so ids within a run are ordered and cost one atomic add.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() idSource {
	var b [5]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	return idSource{prefix: base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])}
}

// NewID returns an id no other event of this Logger (or, but for chance,
// of any other run) carries: "<8 random base32 chars>-<sequence>".
func (l *Logger) NewID() string {
	var buf [32]byte
	out := append(buf[:0], l.ids.prefix...)
	out = append(out, '-')
	out = strconv.AppendUint(out, l.ids.n.Add(1), 36)
	return string(out)
}
