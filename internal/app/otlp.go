package app

import (
	"net/netip"

	"github.com/agentg/agentg/audit/otlp"
	"github.com/agentg/agentg/proxy"
)

// startOTLP starts the OpenTelemetry export of events when an endpoint
// is configured. It reads the log like any other sink, and is closed
// just before the log: every event, the last requests' included, is
// handed to it first. Its connections carry agentg's mark, like every
// other connection of agentg's own.
func (a *App) startOTLP() error {
	c := a.cfg.OTLP
	if c.Endpoint == "" {
		return nil
	}
	s, err := otlp.New(a.log, a.zl, otlp.Config{Endpoint: c.Endpoint, Headers: c.Headers, Queue: c.Queue,
		Dialer: proxy.MarkedDialer(a.cfg.Mark), Version: a.cfg.Build.Version,
		// The proxy, made later in Start, knows agentg's listeners.
		Own: func(ap netip.AddrPort) bool {
			srv := a.own.Load()
			return srv != nil && srv.IsOwnAddr(ap)
		}})
	if err != nil {
		return err
	}
	a.otlp = s
	a.onClose(s.Close)
	endpoint, _ := otlp.ParseEndpoint(c.Endpoint) // checked by New
	a.zl.Info().Str("otlp_endpoint", endpoint).Msg("exporting events as OpenTelemetry spans")
	return nil
}
