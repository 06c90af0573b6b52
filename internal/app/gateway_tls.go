package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/agentg/agentg/gateway/auth"
)

// The gateway door over TLS (--gateway-tls-cert, --gateway-tls-key).
//
// The certificate is the operator's, not one agentg's CA issues: agents
// that reach the gateway are not behind the proxy, so they do not trust
// agentg's interception CA and should not be asked to (trusting it would
// let agentg impersonate every host to them). A certificate from the
// organisation's own PKI, or the one its other internal services use, is
// what such clients already trust.
//
// The door asks every client for a certificate (auth.ConfigureTLS) and
// does not verify it in the handshake: gateway/auth verifies it per
// request against the CA of the policy in force, so a missing, foreign or
// expired certificate is a 401 with WWW-Authenticate and one event naming
// the failed check, rather than a TLS alert nothing records, and a reload
// that changes the client CA needs no new listener. The files are read
// once, at start.

// gatewayTLS is the door's TLS configuration, or nil for plain HTTP when
// neither file is given.
func gatewayTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--gateway-tls-cert and --gateway-tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// crypto/tls names the file's problem, never the key's bytes.
		return nil, fmt.Errorf("--gateway-tls-cert %s, --gateway-tls-key %s: %w", certFile, keyFile, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"}}
	auth.ConfigureTLS(c)
	return c, nil
}

// gatewayErrorLog hands the door's net/http errors (TLS handshakes that
// failed) to the operational log.
func gatewayErrorLog(a *App) *log.Logger {
	return log.New(gatewayLogWriter{a}, "", 0)
}

type gatewayLogWriter struct{ a *App }

func (w gatewayLogWriter) Write(p []byte) (int, error) {
	w.a.zl.Warn().Msg("MCP gateway: " + strings.TrimSpace(string(p)))
	return len(p), nil
}
