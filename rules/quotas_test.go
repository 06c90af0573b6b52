package rules

import (
	"slices"
	"testing"
	"time"

	"github.com/agentg/agentg/addr"
)

const quotaPolicy = `
default: allow
quotas:
  - agents: [builder]
    hosts: [api.example.com, .github.com]
    requests: 600/m
    bytes: 1GiB/d
    id: builder-api
  - bytes: 500MB/h
    per: agent
    id: everyone
  - tunnels: 3
    agents: [ci]
    mode: report
    id: ci-tunnels
  - requests: 10/s
    per: host
    hosts: "*.slow.test"
    id: slow
`

func TestQuotasParse(t *testing.T) {
	e := mustLoad(t, quotaPolicy, nil)
	byID := map[string]*Quota{}
	for i := range e.quotas {
		byID[e.quotas[i].q.ID] = &e.quotas[i].q
	}
	b := byID["builder-api"]
	if b == nil || b.Requests.Amount != 600 || b.Requests.Period != time.Minute || b.Bytes.Amount != 1<<30 || b.Bytes.Period != 24*time.Hour ||
		!b.PerAgent || !b.PerHost || b.Report || b.Source != e.file+":4" {
		t.Errorf("builder-api: %+v", b)
	}
	if q := byID["everyone"]; q == nil || q.Bytes.Amount != 500e6 || q.Bytes.Period != time.Hour || !q.PerAgent || q.PerHost || q.Requests.Amount != 0 {
		t.Errorf("everyone: %+v", q)
	}
	if q := byID["ci-tunnels"]; q == nil || q.Tunnels != 3 || !q.Report {
		t.Errorf("ci-tunnels: %+v", q)
	}
	if q := byID["slow"]; q == nil || q.PerAgent || !q.PerHost {
		t.Errorf("slow: %+v", q)
	}
	// Quotas are rules of the policy: /v1/rules lists them, ids are unique.
	if !slices.ContainsFunc(e.Rules(), func(r RuleInfo) bool { return r.ID == "builder-api" && r.Label == "quota builder-api" }) {
		t.Errorf("Rules() has no builder-api: %+v", e.Rules())
	}
}

func TestQuotasCover(t *testing.T) {
	e := mustLoad(t, quotaPolicy, nil)
	host := func(s string) addr.Host {
		h, err := addr.ParseAuthority(s, 443)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		agent, host string
		want        []string
	}{
		{"builder", "api.example.com", []string{"builder-api", "everyone"}},
		{"builder", "API.Example.com.", []string{"builder-api", "everyone"}}, // canonical form
		{"builder", "x.api.example.com", []string{"everyone"}},               // exact pattern
		{"builder", "github.com", []string{"builder-api", "everyone"}},       // .github.com is the tree
		{"builder", "raw.github.com", []string{"builder-api", "everyone"}},
		{"other", "api.example.com", []string{"everyone"}},
		{"ci", "a.test", []string{"everyone", "ci-tunnels"}},
		{"ci", "10.0.0.1", []string{"everyone", "ci-tunnels"}}, // no hosts: every destination
		{"x", "a.slow.test", []string{"everyone", "slow"}},
		{"x", "slow.test", []string{"everyone"}}, // *. is subdomains only
		{"x", "10.0.0.1", []string{"everyone"}},  // hosts never cover an IP literal
	}
	for _, tt := range tests {
		var got []string
		for _, q := range e.Quotas(tt.agent, host(tt.host)) {
			got = append(got, q.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Quotas(%s, %s) = %v, want %v", tt.agent, tt.host, got, tt.want)
		}
	}
	if e2 := mustLoad(t, "default: allow\n", nil); e2.Quotas("a", host("a.test")) != nil {
		t.Error("a policy without quotas has some")
	}
	// Keys: what a bucket counts per.
	qs := e.Quotas("builder", host("api.example.com"))
	if k1, k2 := qs[0].Key("builder", "api.example.com"), qs[0].Key("builder", "github.com"); k1 == k2 {
		t.Error("per agent and host: two hosts share a bucket")
	}
	if k1, k2 := qs[1].Key("builder", "api.example.com"), qs[1].Key("builder", "github.com"); k1 != k2 {
		t.Error("per agent: two hosts have their own buckets")
	}
	if k1, k2 := qs[1].Key("builder", "a"), qs[1].Key("other", "a"); k1 == k2 {
		t.Error("per agent: two agents share a bucket")
	}
}

func TestQuotasPolicyErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"not a list", "quotas: x\n", `:1: quotas must be a list`},
		{"empty", "quotas:\n  - id: q\n", `:2: a quota needs at least one of requests, bytes or tunnels`},
		{"unknown key", "quotas:\n  - requests: 1/m\n    burst: 3\n", `:3: unknown quotas key "burst"`},
		{"bad rate", "quotas:\n  - requests: 10\n", `:2: bad rate "10"`},
		{"bad period", "quotas:\n  - requests: 10/w\n", `:2: bad rate "10/w"`},
		{"zero", "quotas:\n  - requests: 0/m\n", `:2: bad rate "0/m"`},
		{"size in requests", "quotas:\n  - requests: 1GiB/d\n", `:2: bad rate "1GiB/d"`},
		{"bad size", "quotas:\n  - bytes: 1XB/d\n", `:2: bad rate "1XB/d"`},
		{"negative size", "quotas:\n  - bytes: -1GiB/d\n", `:2: bad rate "-1GiB/d"`},
		{"fraction", "quotas:\n  - bytes: 1.5GiB/d\n", `:2: bad rate "1.5GiB/d"`},
		{"huge", "quotas:\n  - bytes: 99999999TiB/d\n", `:2: bad rate`},
		{"bad tunnels", "quotas:\n  - tunnels: 0\n", `:2: tunnels "0"`},
		{"bad per", "quotas:\n  - requests: 1/m\n    per: tool\n", `:3: per "tool"`},
		{"all and more", "quotas:\n  - requests: 1/m\n    per: [all, agent]\n", `:3: per: all counts everything`},
		{"bad host", "quotas:\n  - requests: 1/m\n    hosts: [\"a.*.test\"]\n", `:3: bad host pattern`},
		{"ip host", "quotas:\n  - requests: 1/m\n    hosts: [10.0.0.1]\n", `:3: IP literal`},
		{"ports", "quotas:\n  - requests: 1/m\n    ports: [443]\n", `:3: unknown quotas key "ports"`},
		{"dup id", "hosts:\n  - allow: a.test\n    id: x\nquotas:\n  - requests: 1/m\n    id: x\n", `:5: duplicate rule id "x"`},
		{"bad agent", "quotas:\n  - requests: 1/m\n    agents: [\"a b\"]\n", `:3: bad agent name`},
	})
}
