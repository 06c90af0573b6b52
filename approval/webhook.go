package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentg/agentg/internal/filetrust"
)

// The webhook: each approval that starts pending is POSTed as JSON to a
// configured URL, so that approvers learn of it (a chat bot, a pager).
// It only notifies: nothing it answers approves anything, and its failure
// leaves the call held until its timeout.
//
// The request:
//
//	POST <url>
//	Content-Type: application/json
//	X-Agentg-Event: approval.pending
//	X-Agentg-Timestamp: 1767225600            (Unix seconds)
//	X-Agentg-Signature: sha256=<hex>          HMAC-SHA256(secret, timestamp + "." + body)
//
//	{"type": "approval.pending", "approval": {"id": ..., "kind", "agent", "server", "tool",
//	 "args", "method", "url", "body", "body_truncated", "body_size", "body_sha256", "body_encoding",
//	 "rule", "created", "expires", "via", "state": "pending"}}
//
// body is an http request's body as its approver sees it (body.go): at
// most PreviewMax bytes, redacted, body_truncated when cut.
//
// A receiver checks the signature with VerifyWebhook (or the same steps
// in its own language): recompute the HMAC over the timestamp header, a
// dot and the raw body; compare in constant time; refuse a timestamp more
// than a few minutes from now, so that a captured request cannot be
// replayed later. A delivery that does not get a 2xx is retried with
// exponential backoff (1s, 2s, 4s, ... up to MaxAttempts).

// Webhook headers.
const (
	HeaderEvent     = "X-Agentg-Event"
	HeaderTimestamp = "X-Agentg-Timestamp"
	HeaderSignature = "X-Agentg-Signature"
)

// WebhookConfig configures a Webhook; URL and Secret are required.
type WebhookConfig struct {
	URL    string
	Secret []byte
	// Client sends the requests; nil: a client of its own (10s timeout,
	// no proxy: agentg's own connection, like an upstream's).
	Client *http.Client
	// MaxAttempts bounds the deliveries of one notification (default 5);
	// Backoff is the wait before the first retry, doubled each time up to
	// 30s (default 1s).
	MaxAttempts int
	Backoff     time.Duration
	// Queue bounds the notifications waiting to be sent (default 1024);
	// past it one is dropped, and OnError told.
	Queue   int
	OnError func(error)
	Now     func() time.Time
}

// Webhook notifies approvers; it implements Notifier.
type Webhook struct {
	cfg   WebhookConfig
	queue chan Approval
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook checks cfg and starts the senders.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("approvals webhook %q: want an http:// or https:// URL", cfg.URL)
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("approvals webhook: the secret must be at least 16 bytes")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	w := &Webhook{cfg: cfg, queue: make(chan Approval, cfg.Queue), stop: make(chan struct{})}
	for range 4 {
		w.wg.Add(1)
		go w.send()
	}
	return w, nil
}

// Pending queues a notification; it never blocks.
func (w *Webhook) Pending(a Approval) {
	select {
	case w.queue <- a:
	default:
		w.report(fmt.Errorf("approvals webhook: queue full, approval %s not notified", a.ID))
	}
}

// Close stops the senders; notifications not yet sent are dropped.
func (w *Webhook) Close() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *Webhook) report(err error) {
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

// webhookBody is what a notification carries.
type webhookBody struct {
	Type     string   `json:"type"`
	Approval Approval `json:"approval"`
}

func (w *Webhook) send() {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case a := <-w.queue:
			body, err := json.Marshal(webhookBody{Type: "approval.pending", Approval: a})
			if err != nil {
				w.report(fmt.Errorf("approvals webhook: %w", err))
				continue
			}
			w.deliver(a.ID, body)
		}
	}
}

// deliver posts body until a 2xx, MaxAttempts, or Close.
func (w *Webhook) deliver(id string, body []byte) {
	wait := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(body)
		if err == nil {
			return
		}
		if attempt >= w.cfg.MaxAttempts {
			w.report(fmt.Errorf("approvals webhook: approval %s not notified after %d attempts: %w", id, attempt, err))
			return
		}
		select {
		case <-w.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agentg-approvals")
	req.Header.Set(HeaderEvent, "approval.pending")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, SignWebhook(w.cfg.Secret, ts, body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// SignWebhook is the X-Agentg-Signature value for a body sent at
// timestamp: "sha256=" and the hex HMAC-SHA256, keyed with secret, of
// timestamp, ".", body.
func SignWebhook(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// DefaultWebhookTolerance is how far from now VerifyWebhook accepts a
// timestamp.
const DefaultWebhookTolerance = 5 * time.Minute

// ErrBadSignature is a notification VerifyWebhook refuses.
var ErrBadSignature = errors.New("approvals webhook: bad signature")

// VerifyWebhook checks a notification as a receiver got it: its headers
// and its raw body, at now. It fails unless the signature is the HMAC of
// this timestamp and body under secret and the timestamp is within
// tolerance of now (0: DefaultWebhookTolerance).
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %s from now", ErrBadSignature, ts, d.Round(time.Second))
	}
	got, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%w: no sha256= signature", ErrBadSignature)
	}
	mac, err := hex.DecodeString(got)
	want := []byte(SignWebhook(secret, ts, body))[len("sha256="):]
	wantMAC, _ := hex.DecodeString(string(want))
	if err != nil || !hmac.Equal(mac, wantMAC) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	return nil
}

// ReadSecretFile reads a webhook secret: the file's content, surrounding
// white space removed, at least 16 bytes. Like the admin token file, it
// must be owned by agentg's user or root and not readable or writable by
// others (filetrust.Provided): whoever reads it can forge approvals'
// notifications, whoever wrote it chose the key.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := filetrust.ReadSecret("approvals webhook secret", path, filetrust.Provided)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("approvals webhook secret %s: at least 16 bytes, not %d", path, len(b))
	}
	return b, nil
}
