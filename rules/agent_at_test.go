package rules

import (
	"net/netip"
	"testing"
)

func TestAgentAt(t *testing.T) {
	defined := mustLoad(t, `agents:
  - name: builder
    password: s3cret
    cidrs: [10.0.0.0/8]
  - name: narrow
    cidrs: [10.1.0.0/16]
`, nil)
	none := mustLoad(t, "default: allow\n", nil)
	tests := []struct {
		name       string
		e          *Engine
		user, pass string
		src        string
		want, err  string
	}{
		{"cidr agent", defined, "", "", "10.1.2.3", "narrow", ""},
		{"no cidr agent: the address", defined, "", "", "192.0.2.7", "192.0.2.7", ""},
		{"mapped address named unmapped", defined, "", "", "::ffff:192.0.2.7", "192.0.2.7", ""},
		{"v6 address", none, "", "", "2001:db8::1", "2001:db8::1", ""},
		{"no policy agents: the address", none, "", "", "127.0.0.1", "127.0.0.1", ""},
		{"password agent by address alone is refused", defined, "", "", "10.2.0.1", "", "agent builder requires a password (Proxy-Authorization Basic)"},
		{"proven user", defined, "builder", "s3cret", "10.9.9.9", "builder", ""},
		{"refused user is not named by address", defined, "builder", "x", "10.9.9.9", "", "bad credentials for agent builder"},
		{"no source, no name", defined, "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src netip.Addr
			if tt.src != "" {
				src = netip.MustParseAddr(tt.src)
			}
			got, err := tt.e.AgentAt(Claim{User: tt.user, Password: tt.pass, Src: src})
			switch {
			case tt.err != "" && (err == nil || err.Error() != tt.err):
				t.Fatalf("AgentAt = %q, %v; want error %q", got, err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatalf("AgentAt: %v", err)
			case got != tt.want:
				t.Fatalf("AgentAt = %q, want %q", got, tt.want)
			}
		})
	}
}
