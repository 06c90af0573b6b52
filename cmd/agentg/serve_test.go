package main

import (
	"bytes"
	"errors"
	"flag"
	"github.com/agentg/agentg/internal/buildinfo"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/certs"
	"github.com/agentg/agentg/internal/app"
	"github.com/agentg/agentg/netsetup"
	"github.com/agentg/agentg/state"
)

// The defaults `agentg serve` documents in its --help (and the README's
// Commands section): a change here is a change users see.
func TestParseServeDefaults(t *testing.T) {
	var stdout bytes.Buffer
	cfg, gc, err := parseServe(nil, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := app.Config{
		DefaultPolicy: defaultPolicy, Listen: "127.0.0.1:3128", Stdout: &stdout, Stderr: io.Discard,
		LogFlushInterval: 100 * time.Millisecond, ShutdownTimeout: 10 * time.Second, ReloadInterval: 2 * time.Second,
		FirstBytesTimeout: 10 * time.Second, TunnelIdleTimeout: 5 * time.Minute, MaxTunnels: 10000, MaxTunnelsPerAgent: 1000,
		InventoryInterval: state.DefaultWriteInterval, ReadHeaderTimeout: 30 * time.Second, BodyIdleTimeout: time.Minute,
		CA:  app.CAConfig{DataDir: certs.DefaultDir()},
		DNS: []string{"127.0.0.1:1053"},
		Admin: app.AdminConfig{Addr: admin.DefaultAddr, ReadHeaderTimeout: admin.DefaultReadHeaderTimeout,
			BodyTimeout: admin.DefaultBodyTimeout, MaxConns: admin.DefaultMaxConns},
		Approvals: app.ApprovalConfig{KeepAlive: 15 * time.Second, MaxPending: 10000},
		Build:     buildinfo.Read(version, buildTime),
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if gc.set {
		t.Fatalf("--gc-percent set without the flag: %+v", gc)
	}
}

func TestParseServeFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(app.Config) bool
	}{
		{"policy, listen, log", []string{"--config", "p.yaml", "--listen", "127.0.0.1:0", "--log-file", "e.log", "--log-flush-interval", "0"},
			func(c app.Config) bool {
				return c.PolicyFile == "p.yaml" && c.Listen == "127.0.0.1:0" && c.LogFile == "e.log" && c.LogFlushInterval == 0
			}},
		{"dns repeatable", []string{"--dns", "127.0.0.1:53", "--dns", "[::1]:53"},
			func(c app.Config) bool { return reflect.DeepEqual(c.DNS, []string{"127.0.0.1:53", "[::1]:53"}) }},
		{"dns off", []string{"--dns", "off"}, func(c app.Config) bool { return c.DNS == nil }},
		{"no tunnel caps", []string{"--max-tunnels", "-1", "--max-tunnels-per-agent", "-1"},
			func(c app.Config) bool { return c.MaxTunnels == -1 && c.MaxTunnelsPerAgent == -1 }},
		{"transparent with the default mark", []string{"--transparent", "127.0.0.1:0"},
			func(c app.Config) bool { return c.Transparent == "127.0.0.1:0" && c.Mark == netsetup.DefaultMark }},
		{"transparent, mark in hex", []string{"--transparent", "127.0.0.1:0", "--mark", "0x10"},
			func(c app.Config) bool { return c.Mark == 16 }},
		{"mark without transparent is unused", []string{"--mark", "nonsense"}, func(c app.Config) bool { return c.Mark == 0 }},
		{"own CA", []string{"--data-dir", "/d", "--ca-cert", "c.pem", "--ca-key", "k.pem"},
			func(c app.Config) bool { return c.CA == app.CAConfig{DataDir: "/d", Cert: "c.pem", Key: "k.pem"} }},
		{"vault key from a KMS", []string{"--vault-key", "softkms:path=/etc/agentg/vault.pem"},
			func(c app.Config) bool { return c.VaultKey == "softkms:path=/etc/agentg/vault.pem" }},
		{"upstream roots repeatable", []string{"--upstream-ca", "a.pem", "--upstream-ca", "b.pem"},
			func(c app.Config) bool { return reflect.DeepEqual(c.UpstreamCAFiles, []string{"a.pem", "b.pem"}) }},
		{"admin off with a token file", []string{"--admin", "off", "--admin-token-file", "t", "--admin-max-conns", "-1"},
			func(c app.Config) bool {
				return c.Admin.Addr == admin.Off && c.Admin.TokenFile == "t" && c.Admin.MaxConns == -1
			}},
		{"approvals webhook", []string{"--approvals-webhook", "http://127.0.0.1:1/", "--approvals-webhook-secret-file", "s", "--approval-keepalive", "1s"},
			func(c app.Config) bool {
				return c.Approvals == app.ApprovalConfig{KeepAlive: time.Second, MaxPending: 10000, Webhook: "http://127.0.0.1:1/", SecretFile: "s"}
			}},
		{"reload polling off", []string{"--reload-interval", "0"}, func(c app.Config) bool { return c.ReloadInterval == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseServe(tt.args, io.Discard, io.Discard)
			if err != nil {
				t.Fatalf("parseServe(%q): %v", tt.args, err)
			}
			if !tt.check(cfg) {
				t.Fatalf("parseServe(%q) = %+v", tt.args, cfg)
			}
		})
	}
}

func TestParseServeGC(t *testing.T) {
	tests := []struct {
		arg     string
		percent int
	}{{"50", 50}, {"off", -1}}
	for _, tt := range tests {
		_, gc, err := parseServe([]string{"--gc-percent", tt.arg}, io.Discard, io.Discard)
		if err != nil || !gc.set || gc.percent != tt.percent {
			t.Fatalf("--gc-percent %s: %+v %v, want %d", tt.arg, gc, err, tt.percent)
		}
	}
}

// Bad values are refused before anything starts, naming the flag.
func TestParseServeRefuses(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error; "" for a usage error (the flag package printed it)
	}{
		{[]string{"--first-bytes-timeout", "0s"}, "--first-bytes-timeout must be positive, not 0s"},
		{[]string{"--tunnel-idle-timeout", "-1s"}, "--tunnel-idle-timeout must be positive"},
		{[]string{"--inventory-interval", "0s"}, "--inventory-interval must be positive"},
		{[]string{"--read-header-timeout", "0s"}, "--read-header-timeout must be positive"},
		{[]string{"--body-idle-timeout", "0s"}, "--body-idle-timeout must be positive"},
		{[]string{"--max-tunnels", "0"}, "--max-tunnels must be a positive number, or -1 for no cap, not 0"},
		{[]string{"--max-tunnels-per-agent", "-2"}, "--max-tunnels-per-agent must be a positive number, or -1 for no cap, not -2"},
		{[]string{"--transparent", "127.0.0.1:0", "--mark", "red"}, `--mark "red": a number`},
		{[]string{"--transparent", "127.0.0.1:0", "--mark", "-1"}, `--mark "-1": a number`},
		{[]string{"--log-flush-interval", "-1s"}, "--log-flush-interval must not be negative"},
		{[]string{"--dns", "off", "--dns", "127.0.0.1:53"}, "--dns off cannot be combined with addresses"},
		{[]string{"--dns", "localhost"}, `--dns "localhost": want HOST:PORT or off`},
		{[]string{"--admin-read-header-timeout", "0s"}, "--admin-read-header-timeout must be positive"},
		{[]string{"--admin-body-timeout", "0s"}, "--admin-body-timeout must be positive"},
		{[]string{"--admin-max-conns", "0"}, "--admin-max-conns must be a positive number"},
		{[]string{"--approval-keepalive", "0s"}, "--approval-keepalive must be positive"},
		{[]string{"--approvals-max-pending", "0"}, "--approvals-max-pending must be positive"},
		{[]string{"--approvals-webhook", "http://127.0.0.1:1/"}, "--approvals-webhook wants --approvals-webhook-secret-file"},
		{[]string{"--vault-key", "nokms"}, `--vault-key: vault key "nokms": want "file" or a KMS URI`},
		{[]string{"--gc-percent", "0"}, ""},
		{[]string{"--max-tunnels", "many"}, ""},
		{[]string{"--no-such-flag"}, ""},
		{[]string{"extra"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			_, _, err := parseServe(tt.args, io.Discard, &stderr)
			if err == nil {
				t.Fatalf("parseServe(%q): no error", tt.args)
			}
			if tt.want == "" {
				if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "Usage: agentg serve") {
					t.Fatalf("parseServe(%q): %v, stderr %q; want a usage error", tt.args, err, stderr.String())
				}
				return
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseServe(%q): %v, want it to say %q", tt.args, err, tt.want)
			}
		})
	}
}

// --help lists every flag serve has, and is not an error.
func TestServeHelp(t *testing.T) {
	var stderr bytes.Buffer
	if _, _, err := parseServe([]string{"--help"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, f := range []string{"config", "listen", "log-file", "log-flush-interval", "shutdown-timeout", "reload-interval",
		"first-bytes-timeout", "tunnel-idle-timeout", "max-tunnels", "max-tunnels-per-agent", "inventory-interval",
		"transparent", "mark", "data-dir", "ca-cert", "ca-key", "read-header-timeout", "body-idle-timeout", "admin",
		"admin-token-file", "admin-read-header-timeout", "admin-body-timeout", "admin-max-conns", "dns",
		"approval-keepalive", "approvals-max-pending", "approvals-webhook", "approvals-webhook-secret-file",
		"gc-percent", "upstream-ca"} {
		if !strings.Contains(stderr.String(), "\n  -"+f+" ") && !strings.Contains(stderr.String(), "\n  -"+f+"\n") {
			t.Errorf("--help does not list -%s", f)
		}
	}
}

// run maps serve's errors to exit codes: usage 2, a refused value 1.
func TestRunServeExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"serve", "--help"}, 0, "Usage: agentg serve"},
		{[]string{"serve", "--bogus"}, 2, "Usage: agentg serve"},
		{[]string{"serve", "--max-tunnels", "0"}, 1, "agentg serve: --max-tunnels must be"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if code := run(tt.args, io.Discard, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.says) {
			t.Errorf("agentg %q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.says)
		}
	}
}
