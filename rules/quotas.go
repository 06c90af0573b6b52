package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/addr"
)

func init() {
	register(section{key: "quotas", rank: rankQuotas,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) (err error) {
			pol.quotas, err = p.quotaRules(v)
			return err
		},
		steps: []step{{phase: phaseRules, at: 50, run: (*compiler).compileQuotas}}})
}

// The quotas section: how much plain HTTP(S) egress an agent may make
// (requests per period, body bytes per period) and how many tunnels it
// may hold open. Quotas are obligations: they never allow anything, every
// entry that covers a request applies, and the proxy (package limit's
// buckets) enforces them after the rules allowed it.

// Quota is one quotas entry.
type Quota struct {
	ID     string // the entry's id, default "<file>:<line>"
	Source string // "<file>:<line>"
	// Requests and Bytes are budgets (Amount per Period, Amount at once);
	// a zero Amount means the entry does not count them.
	Requests, Bytes Rate
	// Tunnels caps the tunnels open at once per key; 0: no cap.
	Tunnels int
	// PerAgent and PerHost say what one bucket counts: each agent's
	// traffic, each host's, or each agent's to each host (both, the
	// default). Neither: one bucket for everything the entry covers.
	PerAgent, PerHost bool
	// Report: traffic past the quota is logged as report and passes.
	Report bool
}

// Rate is an amount per period, as written ("600/m", "1GiB/d").
type Rate struct {
	Spec   string
	Amount float64
	Period time.Duration
}

type quotaSpec struct {
	line  int
	hosts []pattern // nil: every destination
	q     Quota
	opts  ruleOpts
}

func (p *parser) quotaRules(n *yaml.Node) ([]quotaSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "quotas must be a list of {agents, hosts, requests: N/m, bytes: SIZE/d, tunnels: N, per, mode, id}")
	}
	var out []quotaSpec
	for _, it := range n.Content {
		s := quotaSpec{line: it.Line, q: Quota{PerAgent: true, PerHost: true}}
		err := p.eachKey(it, func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "hosts":
				its, e := p.items(v)
				if e != nil {
					return e
				}
				for _, h := range its {
					pt, e := parsePattern(h.Value)
					if e != nil {
						return p.errf(h, "%v", e)
					}
					s.hosts = append(s.hosts, pt)
				}
			case "requests":
				s.q.Requests, err = p.rate(v, false)
			case "bytes":
				s.q.Bytes, err = p.rate(v, true)
			case "tunnels":
				var str string
				if str, err = p.scalar(v); err == nil {
					n, e := strconv.Atoi(str)
					if e != nil || n < 1 || n > 1_000_000 {
						return p.errf(v, "tunnels %q: a number of tunnels, 1 to 1000000", str)
					}
					s.q.Tunnels = n
				}
			case "per":
				s.q.PerAgent, s.q.PerHost, err = p.quotaPer(v, "host")
			case "agents", "mode", "id":
				_, err = p.option(k, v, &s.opts)
			default:
				err = p.errf(k, "unknown quotas key %q (want agents, hosts, requests, bytes, tunnels, per, mode, id)", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if s.q.Requests.Amount == 0 && s.q.Bytes.Amount == 0 && s.q.Tunnels == 0 {
			return nil, p.errf(it, "a quota needs at least one of requests, bytes or tunnels")
		}
		out = append(out, s)
	}
	return out, nil
}

// rate parses "N/s|m|h|d"; with size, N may carry a unit (KB, KiB, MB,
// MiB, GB, GiB, TB, TiB; B or none for bytes).
func (p *parser) rate(v *yaml.Node, size bool) (Rate, error) {
	s, err := p.scalar(v)
	if err != nil {
		return Rate{}, err
	}
	want := "N/s, N/m, N/h or N/d"
	if size {
		want = "SIZE/h or SIZE/d (SIZE: 500MB, 1GiB, 10000)"
	}
	num, unit, found := strings.Cut(s, "/")
	periods := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	per, okPer := periods[strings.TrimSpace(unit)]
	amount, okNum := parseAmount(strings.TrimSpace(num), size)
	if !found || !okPer || !okNum {
		return Rate{}, p.errf(v, "bad rate %q (want %s)", s, want)
	}
	return Rate{Spec: s, Amount: amount, Period: per}, nil
}

func parseAmount(s string, size bool) (float64, bool) {
	mult := 1.0
	if size {
		units := []struct {
			suffix string
			mult   float64
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
			{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
		for _, u := range units {
			if strings.HasSuffix(s, u.suffix) {
				s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
				break
			}
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1 || float64(n)*mult > 1<<60 || math.IsInf(float64(n)*mult, 0) {
		return 0, false
	}
	return float64(n) * mult, true
}

// quotaEntry is one compiled quotas entry.
type quotaEntry struct {
	hosts []pattern
	src   int
	q     Quota
}

func (c *compiler) compileQuotas() error {
	for _, s := range c.pol.quotas {
		si, err := c.ruleSource(s.line, s.opts)
		if err != nil {
			return err
		}
		src := &c.e.sources[si]
		src.label = "quota " + src.ruleID
		q := s.q
		q.ID, q.Source, q.Report = src.ruleID, src.where, src.report
		c.e.quotas = append(c.e.quotas, quotaEntry{hosts: s.hosts, src: si, q: q})
	}
	return nil
}

// Quotas returns the quotas that cover agent's traffic to h, in policy
// order; nil when none do (and then it allocates nothing). An entry with
// hosts covers the names its patterns match, never an IP literal.
func (e *Engine) Quotas(agent string, h addr.Host) []*Quota {
	var out []*Quota
	for i := range e.quotas {
		qe := &e.quotas[i]
		if !e.sources[qe.src].appliesTo(agent) || !qe.covers(h) {
			continue
		}
		out = append(out, &qe.q)
	}
	return out
}

func (qe *quotaEntry) covers(h addr.Host) bool {
	if qe.hosts == nil {
		return true
	}
	if h.IsIP() {
		return false
	}
	for _, pt := range qe.hosts {
		if pt.covers(h.Name) {
			return true
		}
	}
	return false
}

// Key is the bucket key of q for agent's traffic to host (a canonical
// name): the id, then what the quota counts per.
func (q *Quota) Key(agent, host string) string {
	var b strings.Builder
	b.Grow(len(q.ID) + len(agent) + len(host) + 2)
	b.WriteString(q.ID)
	b.WriteByte(0)
	if q.PerAgent {
		b.WriteString(agent)
	}
	b.WriteByte(0)
	if q.PerHost {
		b.WriteString(host)
	}
	return b.String()
}

// Scope says, for messages, whose traffic one bucket of q counts.
func (q *Quota) Scope(agent, host string) string {
	switch {
	case q.PerAgent && q.PerHost:
		return fmt.Sprintf("agent %s to %s", agent, host)
	case q.PerAgent:
		return "agent " + agent
	case q.PerHost:
		return "every agent to " + host
	}
	return "everything it covers"
}

// quotaPer reads a quota's per key: agent, OTHER (host, model), [agent,
// OTHER], or all (one bucket for everything): which keys a bucket is
// counted by.
func (p *parser) quotaPer(v *yaml.Node, other string) (perAgent, perOther bool, err error) {
	its, err := p.items(v)
	if err != nil {
		return false, false, err
	}
	for _, x := range its {
		switch x.Value {
		case "agent":
			perAgent = true
		case other:
			perOther = true
		case "all":
			if len(its) > 1 {
				return false, false, p.errf(x, "per: all counts everything in one bucket; it takes no other value")
			}
		default:
			return false, false, p.errf(x, "per %q (want agent, %s, [agent, %s] or all)", x.Value, other, other)
		}
	}
	return perAgent, perOther, nil
}
