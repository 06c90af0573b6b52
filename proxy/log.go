package proxy

import (
	"log"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/audit"
)

// goproxyLogger sends goproxy's own chatter to the debug level.
type goproxyLogger struct{ l *zerolog.Logger }

func (g goproxyLogger) Printf(format string, v ...any) {
	g.l.Debug().Msgf(strings.TrimSuffix(format, "\n"), v...)
}

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
func (s *Server) emitOpen(f *flow) {
	f.mu.Lock()
	e := audit.Event{
		ID:         s.cfg.Log.NewID(),
		Parent:     f.id,
		Time:       time.Now(),
		Kind:       KindTunnelOpen,
		Agent:      f.agent,
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
	s.cfg.Log.Log(&e)
}
