package rules

import (
	"strings"
	"testing"
)

func TestIdentify(t *testing.T) {
	e := mustLoad(t, `agents:
  - name: builder
    password: s3cret
    cidrs: [10.0.0.0/8]
  - name: narrow
    cidrs: [10.1.0.0/16, "fd00::/8"]
  - name: open
`, nil)
	tests := []struct {
		user, pass, src string
		want            string
		err             string
	}{
		{"builder", "s3cret", "127.0.0.1", "builder", ""},
		{"builder", "wrong", "127.0.0.1", "", "bad credentials for agent builder"},
		{"builder", "", "10.0.0.1", "", "bad credentials"},
		{"open", "", "127.0.0.1", "open", ""},
		{"stranger", "x", "127.0.0.1", "stranger", ""},
		{"bad name", "", "127.0.0.1", "", "invalid agent name"},
		{"bad\x00", "", "127.0.0.1", "", "invalid agent name"},
		{strings.Repeat("a", 65), "", "127.0.0.1", "", "invalid agent name"},
		{"", "", "10.2.0.1", "builder", ""},
		{"", "", "10.1.2.3", "narrow", ""}, // most specific prefix
		{"", "", "::ffff:10.1.2.3", "narrow", ""},
		{"", "", "fd00::1", "narrow", ""},
		{"", "", "192.168.1.1", "", ""},
	}
	for _, tt := range tests {
		got, err := e.Identify(tt.user, tt.pass, ip(tt.src))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Identify(%q,%q,%s) err = %v, want %q", tt.user, tt.pass, tt.src, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Identify(%q,%q,%s) = %q, %v; want %q", tt.user, tt.pass, tt.src, got, err, tt.want)
		}
	}
}
