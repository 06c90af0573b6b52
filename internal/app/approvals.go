package app

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/agentg/agentg/approval"
	"github.com/agentg/agentg/audit"
)

// The approvals wiring of a running agentg, in one place: the held calls'
// store (pending ids in the data directory), the webhook and the broker.

// approvals is the running broker and what it owns.
type approvals struct {
	broker *approval.Broker
	store  *approval.MemoryStore
	hook   *approval.Webhook
}

// openApprovals builds the store, the webhook and the broker, and says
// which calls a previous run left pending.
func openApprovals(c ApprovalConfig, dataDir string, log *audit.Logger, zl *zerolog.Logger) (*approvals, error) {
	if c.KeepAlive <= 0 {
		return nil, fmt.Errorf("approvals: keep-alive must be positive, not %s", c.KeepAlive)
	}
	if c.MaxPending <= 0 {
		return nil, fmt.Errorf("approvals: the most pending must be positive, not %d", c.MaxPending)
	}
	st, err := approval.NewMemoryStore(approval.StoreOptions{DataDir: dataDir, MaxPending: c.MaxPending,
		OnError: func(err error) { zl.Error().Err(err).Msg("approvals state") }})
	if err != nil {
		return nil, fmt.Errorf("approvals state in %s: %w", dataDir, err)
	}
	out := &approvals{store: st}
	cfg := approval.Config{Store: st, Log: log}
	switch {
	case c.Webhook != "" && c.SecretFile == "":
		st.Close()
		return nil, errors.New("--approvals-webhook wants --approvals-webhook-secret-file: an unsigned notification could be forged")
	case c.Webhook != "":
		secret, err := approval.ReadSecretFile(c.SecretFile)
		if err == nil {
			out.hook, err = approval.NewWebhook(approval.WebhookConfig{URL: c.Webhook, Secret: secret,
				OnError: func(err error) { zl.Warn().Err(err).Msg("approvals webhook") }})
		}
		if err != nil {
			st.Close()
			return nil, err
		}
		cfg.Notify = out.hook
	}
	if out.broker, err = approval.New(cfg); err != nil {
		st.Close()
		return nil, err
	}
	if n := out.broker.Recover(); n > 0 {
		zl.Warn().Int("approvals", n).Msg("denied the calls the previous run left held for approval: they were never sent")
	}
	return out, nil
}

// close denies what is still pending, then writes the store.
func (a *approvals) close() {
	a.broker.Shutdown()
	if a.hook != nil {
		a.hook.Close()
	}
	a.store.Close()
}
