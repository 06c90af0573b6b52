package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/rules"
)

// refusal is a request the proxy answers itself, with the status and the
// text the client sees.
type refusal struct {
	status int
	text   string
	header http.Header
	close  bool // the connection cannot be trusted further: close it after
}

// authorize runs every check between "a request named this destination"
// and "these are the addresses we may dial": identity, the host decision,
// resolution, and the IP decision for each address. It fills f and returns
// a refusal when the request must not go on.
func (s *Server) authorize(ctx context.Context, f *flow, r *http.Request, h addr.Host) *refusal {
	f.host = h
	eng := s.cfg.Policy.Engine()

	agent, err := identify(eng, r)
	if err != nil {
		f.setStatus(http.StatusProxyAuthRequired, err.Error())
		return &refusal{
			status: http.StatusProxyAuthRequired,
			text:   "agentg: " + err.Error(),
			header: http.Header{"Proxy-Authenticate": {`Basic realm="agentg"`}},
		}
	}
	f.agent = agent

	f.decision = eng.Host(agent, h)
	if !f.decision.Allowed() {
		return s.denied(f)
	}

	ips, err := s.resolve(ctx, eng, h)
	if err != nil {
		f.setStatus(http.StatusBadGateway, err.Error())
		return &refusal{status: http.StatusBadGateway, text: "agentg: " + err.Error()}
	}
	return s.admitAddrs(eng, f, ips)
}

// admitAddrs decides the addresses of f's destination (the host decision
// made) and keeps in f.ips the ones that may be dialed.
func (s *Server) admitAddrs(eng *rules.Engine, f *flow, ips []netip.Addr) *refusal {
	d, ok := eng.Addresses(f.decision, rules.Dest{Agent: f.agent, Host: f.host, IPs: ips, Self: s.isSelf})
	f.decision, f.ips = d, ok
	switch {
	case d.Rule == rules.RuleNoAddresses:
		f.setStatus(http.StatusBadGateway, "no addresses")
		return &refusal{status: http.StatusBadGateway, text: fmt.Sprintf("agentg: %s has no addresses", f.host.Name)}
	case len(ok) == 0:
		return s.denied(f)
	}
	return nil
}

func (s *Server) denied(f *flow) *refusal {
	d := f.decision
	f.setStatus(http.StatusForbidden, "")
	text := fmt.Sprintf("agentg: %s:%d denied by rule %s", f.host.Name, f.host.Port, d.Rule)
	if d.Source != "" && d.Source != d.Rule {
		text += " (" + d.Source + ")"
	}
	if d.Reason != "" {
		text += ": " + d.Reason
	}
	return &refusal{status: http.StatusForbidden, text: text, header: http.Header{"X-Agentg-Rule": {d.Rule}}}
}

// resolve returns the destination's addresses: the literal itself, the
// policy's static table, or DNS, looked up once. The addresses returned are
// the only ones the dialer will use.
func (s *Server) resolve(ctx context.Context, eng *rules.Engine, h addr.Host) ([]netip.Addr, error) {
	if ips, ok := eng.StaticAddrs(h); ok {
		return ips, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	ips, err := s.cfg.Resolver.LookupNetIP(ctx, "ip", h.Name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", h.Name, err)
	}
	return ips, nil
}

// identify names the agent: the Proxy-Authorization Basic user (checked by
// the policy when it holds a password for that agent), else what the policy
// maps the source address to, else the source address itself.
func identify(eng *rules.Engine, r *http.Request) (string, error) {
	src := remoteIP(r.RemoteAddr)
	user, pass := "", ""
	if v := r.Header.Get("Proxy-Authorization"); v != "" {
		scheme, cred, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Basic") {
			return "", fmt.Errorf("unsupported Proxy-Authorization scheme")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err != nil {
			return "", fmt.Errorf("malformed Proxy-Authorization")
		}
		user, pass, ok = strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return "", fmt.Errorf("malformed Proxy-Authorization")
		}
	}
	agent, err := eng.Agent(rules.Claim{User: user, Password: pass, Src: src})
	if err != nil {
		return "", err
	}
	if agent == "" && src.IsValid() {
		agent = src.String()
	}
	return agent, nil
}

func remoteIP(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func trimAgentg(s string) string { return strings.TrimPrefix(s, "agentg: ") }
