package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway"
	"github.com/agentg/agentg/gateway/auth"
	"github.com/agentg/agentg/proxy"
	"github.com/agentg/agentg/rules"
)

// gatewayDoor is the running MCP gateway door (--gateway); nil when it is
// off (its methods then do nothing).
type gatewayDoor struct {
	gw  *gateway.Gateway
	srv *http.Server
	ln  net.Listener
}

// startGateway listens on cfg.Gateway ("host:port" or "unix:/path"),
// with TLS when cfg names a certificate, makes its address one the proxy
// refuses (agentg is never reachable through itself), and serves the
// gateway there.
func startGateway(cfg Config, live *rules.Live, guard *mcp.Guard, srv *proxy.Server, a *App) (*gatewayDoor, error) {
	address := cfg.Gateway
	if address == "" {
		if cfg.GatewayTLSCert != "" || cfg.GatewayTLSKey != "" {
			return nil, errors.New("--gateway-tls-cert and --gateway-tls-key need --gateway")
		}
		return nil, nil
	}
	tlsConf, err := gatewayTLS(cfg.GatewayTLSCert, cfg.GatewayTLSKey) // gateway_tls.go; nil: plain HTTP
	if err != nil {
		return nil, err
	}
	ln, err := listenGateway(address)
	if err != nil {
		return nil, err
	}
	// Who the agent is: with a gateway: section, the credential it
	// proves (gateway/auth: a bearer token, a JWT of the identity
	// provider, a client certificate), refused with 401 and one event
	// otherwise; without one, by source address as the proxy names an
	// agent that presents no credentials.
	authn, err := auth.New(auth.Options{Policy: live, Client: srv.Client(), Log: a.log})
	if err != nil {
		ln.Close()
		return nil, err
	}
	var children gateway.Children
	if sup := a.Stdio(); sup != nil {
		children = sup // never a typed nil: without one, command servers fail to open, with a reason
	}
	gw, err := gateway.New(gateway.Config{
		Policy: live.Engine, Guard: guard, Log: a.log, Version: a.cfg.Build.Version, Auth: provenAgent{},
		// What the guard lets through is the agent's request, sent by the
		// proxy as it would send the same request of that agent's: host
		// and HTTP rules as the agent, checked addresses, never agentg
		// itself, the upstream's TLS verified, and the credentials the
		// agent's bindings attach (proxy/send.go).
		Send: func(w http.ResponseWriter, r *http.Request, who gateway.Who, server string) error {
			return srv.Send(w, r, proxy.Sender{Agent: who.Agent, Client: who.Client, Door: gateway.Door, Server: server, Subject: who.Subject})
		},
		Client: srv.Client(),
		// The policy's command servers, served over stdio to the process
		// the supervisor runs (started before the gateway).
		Children: children,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv.AddOwnAddr(ln.Addr())
	door := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if live.Engine().Gateway().Defined() {
			authn.Middleware(gw).ServeHTTP(w, r)
			return
		}
		gw.ServeHTTP(w, r)
	})
	d := &gatewayDoor{gw: gw, ln: ln, srv: &http.Server{Handler: door, ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		TLSConfig: tlsConf, ErrorLog: gatewayErrorLog(a)}}
	go func() {
		var err error
		if tlsConf != nil {
			err = d.srv.ServeTLS(ln, "", "") // HTTP/2 and HTTP/1.1 by ALPN
		} else {
			err = d.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.zl.Error().Err(err).Msg("MCP gateway stopped")
		}
	}()
	where := ln.Addr().String()
	if ln.Addr().Network() == "unix" {
		where = "unix:" + where
	}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	a.zl.Info().Str("gateway", where).Str("scheme", scheme).Str("path", gateway.Path).Msg("MCP gateway listening")
	if tlsConf == nil && live.Engine().Gateway().MTLS != nil {
		a.zl.Warn().Msg("MCP gateway: the policy's gateway: mtls section proves no agent on a door without TLS: give --gateway-tls-cert and --gateway-tls-key")
	}
	return d, nil
}

// provenAgent names the agent gateway/auth proved for a request (its
// Middleware put it in the context), or, when the policy asks for no
// credential at the gateway, the agent at the request's address.
type provenAgent struct{}

func (provenAgent) Authenticate(r *http.Request, e *rules.Engine) (gateway.Who, error) {
	if id, ok := auth.FromContext(r.Context()); ok {
		return gateway.Who{Agent: id.Agent, Client: r.RemoteAddr, Subject: id.Subject()}, nil
	}
	if e.Gateway().Defined() {
		// A reload added a gateway: section between the door's look and
		// this one: the request proved no one, so it is refused.
		return gateway.Who{}, errors.New("the policy asks the gateway for a credential, and this request was not authenticated")
	}
	return gateway.ByAddress{}.Authenticate(r, e)
}

func (provenAgent) Challenge() string { return gateway.ByAddress{}.Challenge() }

func listenGateway(address string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(address, "unix:"); ok {
		if p == "" {
			return nil, fmt.Errorf("--gateway %q: unix: needs a socket path", address)
		}
		if st, err := os.Lstat(p); err == nil && st.Mode()&fs.ModeSocket != 0 {
			if c, err := net.Dial("unix", p); err == nil {
				c.Close()
				return nil, fmt.Errorf("--gateway %s: something listens there already", address)
			}
			os.Remove(p) // a stale socket of an agentg that died
		}
		ln, err := net.Listen("unix", p)
		if err != nil {
			return nil, fmt.Errorf("--gateway %s: %w", address, err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("--gateway %s: %w", address, err)
		}
		return ln, nil
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return nil, fmt.Errorf("--gateway %q: want host:port or unix:/path: %w", address, err)
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("--gateway %s: %w", address, err)
	}
	return ln, nil
}

// Addr is where the gateway listens ("unix:/path" for a socket); "" when
// it is off.
func (d *gatewayDoor) addr() string {
	if d == nil {
		return ""
	}
	if d.ln.Addr().Network() == "unix" {
		return "unix:" + d.ln.Addr().String()
	}
	return d.ln.Addr().String()
}

// shutdown stops taking requests, gives those in flight ctx, and closes
// every client session and its upstream sessions.
func (d *gatewayDoor) shutdown(ctx context.Context, zl *zerolog.Logger) {
	if d == nil {
		return
	}
	if err := d.srv.Shutdown(ctx); err != nil {
		d.srv.Close() // streams still open at the grace's end
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { d.gw.Close(); close(done) }()
	select {
	case <-done:
	case <-cctx.Done():
		zl.Warn().Msg("MCP gateway: upstream sessions still closing at shutdown")
	}
}
