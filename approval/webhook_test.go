package approval

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef-secret")

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"type":"approval.pending","approval":{"id":"ap-1"}}`)
	ts := "1767225600"
	good := http.Header{HeaderTimestamp: {ts}, HeaderSignature: {SignWebhook(secret, ts, body)}}
	if err := VerifyWebhook(secret, good, body, now, 0); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	cases := []struct {
		name string
		h    http.Header
		body []byte
		at   time.Time
		key  []byte
	}{
		{"tampered body", good, []byte(strings.Replace(string(body), "ap-1", "ap-2", 1)), now, secret},
		{"other secret", good, body, now, []byte("another-secret-of-16")},
		{"tampered timestamp", http.Header{HeaderTimestamp: {"1767225601"}, HeaderSignature: good[HeaderSignature]}, body, now, secret},
		{"replayed late", good, body, now.Add(10 * time.Minute), secret},
		{"no signature", http.Header{HeaderTimestamp: {ts}}, body, now, secret},
		{"not hex", http.Header{HeaderTimestamp: {ts}, HeaderSignature: {"sha256=zz"}}, body, now, secret},
		{"no timestamp", http.Header{HeaderSignature: good[HeaderSignature]}, body, now, secret},
	}
	for _, c := range cases {
		if err := VerifyWebhook(c.key, c.h, c.body, c.at, 0); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", c.name, err)
		}
	}
}

// A loopback receiver that fails twice gets the notification on the third
// attempt, signed.
func TestWebhookRetries(t *testing.T) {
	var n atomic.Int64
	got := make(chan Approval, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if err := VerifyWebhook(secret, r.Header, body, time.Now(), 0); err != nil {
			t.Error(err)
		}
		var b webhookBody
		json.Unmarshal(body, &b)
		got <- b.Approval
	}))
	defer srv.Close()
	w, err := NewWebhook(WebhookConfig{URL: srv.URL, Secret: secret, Backoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Pending(Approval{ID: "ap-x", Tool: "echo", State: StatePending})
	select {
	case a := <-got:
		if a.ID != "ap-x" || a.Tool != "echo" || n.Load() != 3 {
			t.Fatalf("got %+v after %d attempts", a, n.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("not delivered after %d attempts", n.Load())
	}
}

func TestNewWebhookRefuses(t *testing.T) {
	if _, err := NewWebhook(WebhookConfig{URL: "ftp://x", Secret: secret}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := NewWebhook(WebhookConfig{URL: "http://127.0.0.1:1/", Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
}
