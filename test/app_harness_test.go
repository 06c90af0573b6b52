package test

import (
	"context"
	"github.com/agentg/agentg/internal/buildinfo"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/app"
)

// startInProcess starts a whole agentg in this process through internal/app,
// the package `agentg serve` runs, with serve's defaults except: loopback
// ports, the DNS filter and the admin API off, policy polling off, and the
// events in the env's log. It is for tests of what agentg as a whole does
// (its shutdown); tests of the proxy door alone, in configurations serve
// cannot make (no CA, a fixed resolver), use startProxy.
func startInProcess(t *testing.T, policy string) *env {
	t.Helper()
	return startInProcessWith(t, policy, nil)
}

// startInProcessWith is startInProcess with the config changed by tweak.
func startInProcessWith(t *testing.T, policy string, tweak func(*app.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, policy: path, log: &syncBuffer{}}
	cfg := app.Config{
		PolicyFile: path, Listen: "127.0.0.1:0", Stdout: e.log, Stderr: e.log,
		ShutdownTimeout: 10 * time.Second, FirstBytesTimeout: 10 * time.Second, TunnelIdleTimeout: 5 * time.Minute,
		MaxTunnels: 10000, MaxTunnelsPerAgent: 1000, InventoryInterval: time.Minute,
		ReadHeaderTimeout: 30 * time.Second, BodyIdleTimeout: time.Minute,
		CA:        app.CAConfig{DataDir: data},
		Admin:     app.AdminConfig{Addr: admin.Off},
		Approvals: app.ApprovalConfig{KeepAlive: 15 * time.Second, MaxPending: 10000},
		Build:     buildinfo.Info{Version: "test"},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start agentg: %v", err)
	}
	e.app, e.addr = a, a.Addr().String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx, "test end") // a second Shutdown only closes what is still open
	})
	return e
}
