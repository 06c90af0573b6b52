package proxy

import (
	"log"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/audit"
)

// newStdLogger routes net/http's server errors (TLS handshake noise,
// accept errors) into the same JSON stream.
func newStdLogger(l *zerolog.Logger) *log.Logger {
	return log.New(stdWriter{l}, "", 0)
}

type stdWriter struct{ l *zerolog.Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("component", "http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// events writes the proxy's audit events: one per flow (emit), the
// tunnel-open line, and the heads refused before a handler saw them. It
// is the only writer of proxy events, so every door's events share one
// shape.
type events struct{ log *audit.Logger }

// KindTunnelOpen is the kind of the event written when a tunnel is
// established: a CONNECT answered 200 (after the upstream was dialed, for
// a plain tunnel), a transparent connection dialed.
const KindTunnelOpen = "tunnel-open"

// emitOpen writes the tunnel-open event of the tunnel f: written as it is
// established, so that a tunnel that lives long and then dies with agentg
// (SIGKILL, a crash) still has a line in the log. It records the admission
// and is not a second decision: the tunnel's event of record is the one
// written when it closes (kind "connect", id f.id, bytes and duration, and
// the gate's refusal if the first bytes were refused after all).
// The open event has its own id and names that tunnel as its parent, as
// the requests inside the tunnel do, so a reader joins them on f.id; the
// close event names the open one back (opened).
func (ev *events) emitOpen(f *flow) {
	f.mu.Lock()
	e := audit.Event{
		ID:         ev.log.NewID(),
		Parent:     f.id,
		Time:       time.Now(),
		Kind:       KindTunnelOpen,
		Agent:      f.agent,
		Server:     f.server,
		CausedBy:   f.causedBy,
		Client:     f.client,
		Method:     f.method,
		Scheme:     f.scheme,
		Host:       f.host.Name,
		Port:       f.host.Port,
		Decision:   f.decision.Outcome(),
		Rule:       f.decision.Rule,
		RuleSource: f.decision.Source,
		Reason:     f.decision.Reason,
		TLS:        f.tls,
		Door:       f.door,
	}
	if f.origDst.IsValid() {
		e.OriginalDst = f.origDst.String()
	}
	if f.dialed.IsValid() {
		e.IP = f.dialed.String()
	}
	f.openID = e.ID
	f.mu.Unlock()
	ev.log.Log(&e)
}
