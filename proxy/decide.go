package proxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/agentg/agentg/addr"
	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/limit"
	"github.com/agentg/agentg/rules"
)

// The door pipeline, written once for the explicit and transparent doors
// (the DNS door runs the same steps in package dnsfilter, naming its agent
// by the same rules.Engine.AgentAt): who (the agent, its claim proven),
// decide (the host, then its addresses), admit (the tunnel caps and the
// quotas), and a refusal when a step says no. A door only frames the
// refusal the way its client understands it: refusal.response for a
// CONNECT or a tunnel, writeRefusal on the exchange path, nothing at all
// for a transparent connection (it was never told it spoke to a proxy).

// pipeline holds what the pipeline's steps ask: the policy in force, the
// resolver, the dialer's knowledge of agentg's own addresses, the DNS
// filter's bindings, the quota buckets and the open tunnels.
type pipeline struct {
	policy        Policy
	resolver      Resolver
	lookupTimeout time.Duration
	dial          *checkedDialer
	bindings      NameBindings // nil: none
	quotas        *limit.Quotas
	tunnels       *tunnelSet
	// maxTunnels and maxTunnelsPerAgent are the flags' caps; negative:
	// no cap.
	maxTunnels, maxTunnelsPerAgent int
	leaks                          *creds.Guard // nil: none (leak.go, hostLeak)
	// servers proves the identities of MCP servers agentg started, and
	// causes attributes their egress (servers.go); nil: none.
	servers ServerIdentities
	causes  EgressCauses
}

// refusal is a request the proxy answers itself, with the status and the
// text the client sees.
type refusal struct {
	status int
	text   string
	header http.Header
	close  bool // the connection cannot be trusted further: close it after
}

// Refusals have one framing, written here once: refusal.record puts the
// status in the flow's event, refusal.fill the headers, and the text and a
// newline are the body. writeRefusal sends it on a ResponseWriter (the
// exchange path, the non-proxy answer); refusal.response is the same as
// an *http.Response for a connection agentg answers itself (a CONNECT
// through goproxy, a tunnel whose upstream could not be dialed).

// record sets f's status from the refusal: a 403 is explained by its
// decision, anything else by the refusal's text.
func (ref *refusal) record(f *flow) {
	reason := ""
	if ref.status != http.StatusForbidden {
		reason = trimAgentg(ref.text)
	}
	f.setStatus(ref.status, reason)
}

// fill sets the refusal's headers in h: its own, then the body's type and
// length, and Connection: close when the connection ends after it.
func (ref *refusal) fill(h http.Header) {
	for k, v := range ref.header {
		h[k] = v
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(ref.text)+1))
	if ref.close {
		h.Set("Connection", "close")
	}
}

// writeRefusal is agentg's own answer to a request it does not forward,
// recorded in the flow.
func (s *Server) writeRefusal(w http.ResponseWriter, f *flow, ref *refusal) {
	ref.record(f)
	f.mu.Lock()
	f.refused = ref
	f.mu.Unlock()
	ref.fill(w.Header())
	w.WriteHeader(ref.status)
	io.WriteString(w, ref.text+"\n")
}

// response is the refusal as an HTTP/1.1 response of its own.
func (ref *refusal) response() *http.Response {
	body := ref.text + "\n"
	h := make(http.Header, len(ref.header)+3)
	ref.fill(h)
	return &http.Response{
		StatusCode: ref.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Close: ref.close,
	}
}

// authorize runs every check between "a request named this destination"
// and "these are the addresses we may dial": identity, the host decision,
// resolution, and the IP decision for each address. It fills f and returns
// a refusal when the request must not go on.
func (p *pipeline) authorize(ctx context.Context, f *flow, r *http.Request, h addr.Host) *refusal {
	f.host = h
	eng := p.policy.Engine()

	agent, err := p.identify(eng, r)
	if err != nil {
		f.setStatus(http.StatusProxyAuthRequired, err.Error())
		return &refusal{
			status: http.StatusProxyAuthRequired,
			text:   "agentg: " + err.Error(),
			header: http.Header{"Proxy-Authenticate": {`Basic realm="agentg"`}},
		}
	}
	f.agent = agent
	if ref := p.hostLeak(f); ref != nil {
		return ref
	}
	if ref := p.serverEgress(eng, f); ref != nil {
		return ref
	}

	f.decision = eng.Host(agent, h)
	if !f.decision.Allowed() {
		return denied(f)
	}

	ips, err := p.resolve(ctx, eng, h)
	if err != nil {
		f.setStatus(http.StatusBadGateway, err.Error())
		return &refusal{status: http.StatusBadGateway, text: "agentg: " + err.Error()}
	}
	ref := p.admitAddrs(eng, f, ips)
	if ref == nil {
		p.sawEgress(f)
	}
	return ref
}

// admitAddrs decides the addresses of f's destination (the host decision
// made) and keeps in f.ips the ones that may be dialed.
func (p *pipeline) admitAddrs(eng *rules.Engine, f *flow, ips []netip.Addr) *refusal {
	d, ok := eng.Addresses(f.decision, rules.Dest{Agent: f.agent, Host: f.host, IPs: ips, Self: p.dial.isSelf})
	f.decision, f.ips = d, ok
	switch {
	case d.Rule == rules.RuleNoAddresses:
		f.setStatus(http.StatusBadGateway, "no addresses")
		return &refusal{status: http.StatusBadGateway, text: fmt.Sprintf("agentg: %s has no addresses", f.host.Name)}
	case len(ok) == 0:
		return denied(f)
	}
	return nil
}

// denied records and returns the refusal of f's deny decision.
func denied(f *flow) *refusal {
	f.setStatus(http.StatusForbidden, "")
	return forbidden(f.host, f.decision)
}

// forbidden is the refusal of deny decision d for h: 403, naming the rule.
func forbidden(h addr.Host, d rules.Decision) *refusal {
	text := fmt.Sprintf("agentg: %s:%d denied by rule %s", h.Name, h.Port, d.Rule)
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
func (p *pipeline) resolve(ctx context.Context, eng *rules.Engine, h addr.Host) ([]netip.Addr, error) {
	if ips, ok := eng.StaticAddrs(h); ok {
		return ips, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.lookupTimeout)
	defer cancel()
	ips, err := p.resolver.LookupNetIP(ctx, "ip", h.Name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", h.Name, err)
	}
	return ips, nil
}

// identify is the explicit door's "who": the Proxy-Authorization Basic
// user (checked by the policy when it holds a password for that agent),
// else what the policy maps the source address to, else the source
// address itself (rules.Engine.AgentAt, as every door names its agent).
func (p *pipeline) identify(eng *rules.Engine, r *http.Request) (string, error) {
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
	if agent, ok, err := p.serverClaim(user, pass); ok {
		return agent, err // a server agentg started (servers.go)
	}
	return eng.AgentAt(rules.Claim{User: user, Password: pass, Src: src})
}

func remoteIP(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func trimAgentg(s string) string { return strings.TrimPrefix(s, "agentg: ") }
