package testenv

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// WaitEvent finds an event logged before the wait began and one logged
// while it waits, each once, and fails (rather than passing) when no
// event matches before its context ends.
func TestWaitEvent(t *testing.T) {
	up := StartUpstream(UpstreamOptions{})
	defer up.Close()
	a, err := StartAgentg(AgentgConfig{Dir: t.TempDir(), Policy: allowLoopback, Args: []string{"--reload-interval", "0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(a.URL())}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	get := func(path string) {
		t.Helper()
		resp, err := c.Get("http://" + up.HostPort("up.test") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := func(p string) func(map[string]any) bool {
		return func(ev map[string]any) bool { return ev["kind"] == "http" && ev["path"] == p }
	}

	get("/before")
	if ev, err := a.WaitEvent(ctx, path("/before")); err != nil || ev["decision"] != "allow" {
		t.Fatalf("the event of a request made before the wait: %v %v", ev, err)
	}

	done := make(chan error, 1)
	go func() {
		evs, err := a.WaitEvents(ctx, 2, path("/during"))
		if err == nil && (len(evs) != 2 || evs[0]["id"] == evs[1]["id"]) {
			t.Errorf("two events for /during: %v", evs)
		}
		done <- err
	}()
	get("/during")
	get("/during")
	if err := <-done; err != nil {
		t.Fatalf("the events of requests made while waiting: %v", err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if ev, err := a.WaitEvent(short, path("/never")); err == nil {
		t.Fatalf("an event for a request never made: %v", ev)
	}
}
