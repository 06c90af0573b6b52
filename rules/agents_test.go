package rules

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAgent(t *testing.T) {
	const agents = `agents:
  - name: builder
    password: s3cret
    cidrs: [10.0.0.0/8]
  - name: narrow
    cidrs: [10.1.0.0/16, "fd00::/8"]
  - name: keyed
    password: k3y
  - name: open
`
	defined := mustLoad(t, agents, nil)
	free := mustLoad(t, agents+"free_agent_names: true\n", nil)
	none := mustLoad(t, "default: allow\n", nil)
	tests := []struct {
		name       string
		e          *Engine
		user, pass string
		src        string
		want, err  string
	}{
		{"password and source", defined, "builder", "s3cret", "10.9.9.9", "builder", ""},
		{"mapped source", defined, "builder", "s3cret", "::ffff:10.9.9.9", "builder", ""},
		{"source outside cidrs", defined, "builder", "s3cret", "127.0.0.1", "", "agent builder may not connect from 127.0.0.1"},
		{"wrong password", defined, "builder", "wrong", "10.9.9.9", "", "bad credentials for agent builder"},
		{"no password", defined, "builder", "", "10.9.9.9", "", "bad credentials for agent builder"},
		{"wrong password and source", defined, "builder", "x", "127.0.0.1", "", "bad credentials for agent builder"},
		{"cidrs only, inside", defined, "narrow", "", "10.1.2.3", "narrow", ""},
		{"cidrs only, v6", defined, "narrow", "", "fd00::1", "narrow", ""},
		{"cidrs only, outside", defined, "narrow", "", "10.2.0.1", "", "agent narrow may not connect from 10.2.0.1"},
		{"password only", defined, "keyed", "k3y", "192.0.2.1", "keyed", ""},
		{"password only, wrong", defined, "keyed", "k3", "192.0.2.1", "", "bad credentials for agent keyed"},
		{"neither", defined, "open", "", "192.0.2.1", "open", ""},
		{"unknown", defined, "stranger", "x", "10.1.2.3", "", "unknown agent stranger"},
		{"unknown address", defined, "10.1.2.3", "", "10.1.2.3", "", "unknown agent 10.1.2.3"},
		{"free name", free, "stranger", "", "127.0.0.1", "stranger", ""},
		{"free name, still proven when defined", free, "builder", "", "10.9.9.9", "", "bad credentials for agent builder"},
		{"free name is an address", free, "127.0.0.1", "", "127.0.0.1", "", "agent name 127.0.0.1 is an address"},
		{"free name is a v6 address", free, "::1", "", "127.0.0.1", "", "is an address"},
		{"no agents defined: free", none, "anyone", "", "127.0.0.1", "anyone", ""},
		{"no agents defined: address", none, "10.0.0.7", "", "127.0.0.1", "", "is an address"},
		{"invalid name", defined, "bad name", "", "127.0.0.1", "", "invalid agent name"},
		{"invalid bytes", free, "bad\x00", "", "127.0.0.1", "", "invalid agent name"},
		{"too long", free, strings.Repeat("a", 65), "", "127.0.0.1", "", "invalid agent name"},
		// No user: the source names the agent.
		{"by source", defined, "", "", "10.1.2.3", "narrow", ""}, // most specific prefix
		{"by mapped source", defined, "", "", "::ffff:10.1.2.3", "narrow", ""},
		{"by v6 source", defined, "", "", "fd00::1", "narrow", ""},
		{"by source, password agent", defined, "", "", "10.2.0.1", "", "agent builder requires a password"},
		{"by source, none", defined, "", "", "192.168.1.1", "", ""},
		{"no source", defined, "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src netip.Addr
			if tt.src != "" {
				src = ip(tt.src)
			}
			got, err := tt.e.Agent(Claim{User: tt.user, Password: tt.pass, Src: src})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || got != "" {
					t.Errorf("Agent(%q, %q, %s) = %q, %v; want error %q", tt.user, tt.pass, tt.src, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Agent(%q, %q, %s) = %q, %v; want %q", tt.user, tt.pass, tt.src, got, err, tt.want)
			}
		})
	}
}

func TestFreeAgentNamesErrors(t *testing.T) {
	checkLoadErrors(t, []loadErrorCase{
		{"not a bool", "free_agent_names: sometimes\n", `:1: expected true or false`},
	})
}
