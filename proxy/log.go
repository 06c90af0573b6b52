package proxy

import (
	"log"
	"strings"

	"github.com/rs/zerolog"
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
