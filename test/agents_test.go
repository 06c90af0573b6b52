package test

import (
	"testing"
)

// Issue 11: an agent name is a claim, and counted only where it is proven:
// by the agent's password, by its source CIDRs, or both when the policy
// gives both. Until now any Basic user could claim any name (and with it
// that agent's rules) as long as the agent had no password.
func TestAgentClaimsProven(t *testing.T) {
	up := newUpstream(t, false, nil)
	tests := []struct {
		name, agents string
		user, pass   string
		status       int
	}{
		{"cidrs elsewhere", "agents:\n  - name: builder\n    cidrs: [10.0.0.0/8]\n", "builder", "", 407},
		{"wrong password", "agents:\n  - name: builder\n    password: s3cret\n", "builder", "wrong", 407},
		{"right password", "agents:\n  - name: builder\n    password: s3cret\n", "builder", "s3cret", 200},
		{"undefined name", "agents:\n  - name: builder\n    password: s3cret\n", "ghost", "", 407},
		{"undefined name, free names", "free_agent_names: true\nagents:\n  - name: builder\n    password: s3cret\n", "ghost", "", 200},
		{"no agents defined", "", "ghost", "", 200},
		{"cidrs hold the source", "agents:\n  - name: builder\n    cidrs: [127.0.0.0/8]\n", "builder", "", 200},
		{"cidrs and password", "agents:\n  - name: builder\n    cidrs: [127.0.0.0/8]\n    password: s3cret\n", "builder", "s3cret", 200},
		{"cidrs but wrong password", "agents:\n  - name: builder\n    cidrs: [127.0.0.0/8]\n    password: s3cret\n", "builder", "wrong", 407},
		{"password but cidrs elsewhere", "agents:\n  - name: builder\n    cidrs: [10.0.0.0/8]\n    password: s3cret\n", "builder", "s3cret", 407},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startProxy(t, basePolicy(tt.agents+gatePolicyHosts), nil)
			target := "allowed.test:" + up.port
			auth := "Proxy-Authorization: Basic " + basic(tt.user, tt.pass) + "\r\n"

			resp, body := rawRequest(t, e.addr, "GET http://"+target+"/ HTTP/1.1\r\nHost: "+target+"\r\n"+auth+"\r\n")
			if resp.StatusCode != tt.status {
				t.Fatalf("GET as %s: %d %q, want %d", tt.user, resp.StatusCode, body, tt.status)
			}
			if tt.status == 407 && resp.Header.Get("Proxy-Authenticate") == "" {
				t.Error("407 without Proxy-Authenticate")
			}
			if tt.status == 200 {
				waitEventT(t, e, map[string]any{"kind": "http", "agent": tt.user, "decision": "allow"})
			} else {
				waitEventT(t, e, map[string]any{"kind": "http", "status": 407, "decision": "deny"})
			}

			// CONNECT is identified the same way.
			c, _, resp := dialConnect(t, e, target, auth)
			c.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("CONNECT as %s: %d, want %d", tt.user, resp.StatusCode, tt.status)
			}
		})
	}
}
