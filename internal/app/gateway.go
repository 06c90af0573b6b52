package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/dissect/mcp"
	"github.com/agentg/agentg/gateway"
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

// startGateway listens on address ("host:port" or "unix:/path"), makes
// its address one the proxy refuses (agentg is never reachable through
// itself), and serves the gateway there.
func startGateway(address string, live *rules.Live, guard *mcp.Guard, srv *proxy.Server, roots *x509.CertPool, a *App) (*gatewayDoor, error) {
	if address == "" {
		return nil, nil
	}
	ln, err := listenGateway(address)
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gateway.Config{
		Policy: live.Engine, Guard: guard, Log: a.log, Version: a.cfg.Version,
		// TODO(integrator): srv.Client() (issue 16, branch i16-vault),
		// agentg's checked client, once merged: the gateway's upstream
		// requests then meet the host rules, checked addresses, upstream
		// TLS verification and credentials as the proxy's do. Until
		// then a plain client, trusting the upstream CAs agentg trusts, that
		// at least never dials agentg itself (an endpoint naming one of
		// agentg's own listeners would loop the gateway into itself).
		Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
			DialContext: notSelf(srv)}},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv.AddOwnAddr(ln.Addr())
	d := &gatewayDoor{gw: gw, ln: ln, srv: &http.Server{Handler: gw, ReadHeaderTimeout: a.cfg.ReadHeaderTimeout}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.zl.Error().Err(err).Msg("MCP gateway stopped")
		}
	}()
	where := ln.Addr().String()
	if ln.Addr().Network() == "unix" {
		where = "unix:" + where
	}
	a.zl.Info().Str("gateway", where).Str("path", gateway.Path).Msg("MCP gateway listening")
	return d, nil
}

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

// notSelf dials address after resolving it once and refusing it when any
// of its addresses is one of agentg's own listeners; it dials the
// addresses it checked, not a second resolution.
func notSelf(srv *proxy.Server) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("gateway upstream %s: bad port", address)
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if srv.IsOwnAddr(netip.AddrPortFrom(ip.Unmap(), uint16(p))) {
				return nil, fmt.Errorf("gateway upstream %s is agentg's own address: agentg is never reachable through itself", address)
			}
		}
		var last error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(p)).String())
			if err == nil {
				return c, nil
			}
			last = err
		}
		return nil, last
	}
}
