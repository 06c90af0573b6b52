package app

import (
	"context"
	"time"
)

// The background loops of a running agentg: the policy watch and the pin
// poll, and what every reload (poll, SIGHUP, admin API) does after it.

// startLoops starts the policy watch (with a policy file) and the pin
// poll, both every ReloadInterval (0: neither), until ctx ends.
func (a *App) startLoops(ctx context.Context) {
	every := a.cfg.ReloadInterval
	if every <= 0 {
		return
	}
	if a.cfg.PolicyFile != "" {
		go a.live.Watch(ctx, every, a.afterReload)
	}
	// Pins accepted with `agentg mcp pins accept` take effect on the
	// next poll, like a policy edit.
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.store.Reload(); err != nil {
					a.zl.Error().Err(err).Msg("reloading MCP tool pins failed; the pins in force stay")
				}
			}
		}
	}()
}

// afterReload is what follows every policy reload, whatever triggered
// it: the metrics count it, the pins are re-read, and the outcome is
// logged. Open tunnels are re-decided by the proxy itself.
func (a *App) afterReload(err error) {
	a.adm.observeReload(err)
	if perr := a.store.Reload(); perr != nil {
		a.zl.Error().Err(perr).Msg("reloading MCP tool pins failed; the pins in force stay")
	}
	if err != nil {
		a.zl.Error().Err(err).Msg("policy reload failed; the previous policy stays in force")
		return
	}
	changes := a.policy.loaded(a.zl, a.live.Engine(), false)
	a.zl.Info().Str("policy", a.source).Str("changed", changeText(changes)).Msg("policy reloaded")
}
