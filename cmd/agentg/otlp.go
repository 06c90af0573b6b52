package main

import (
	"errors"
	"flag"
	"fmt"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/agentg/agentg/audit/otlp"
	"github.com/agentg/agentg/internal/app"
)

// otlpFlags are serve's flags for the OpenTelemetry export of events.
type otlpFlags struct {
	endpoint string
	headers  []string
	queue    int
}

func (o *otlpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.endpoint, "otlp-endpoint", "", "export every event as an OpenTelemetry span to this OTLP/HTTP collector (http://HOST:4318; /v1/traces is added to a URL without a path); off by default")
	fs.Func("otlp-header", "NAME=VALUE header sent with every export, such as a collector's token (repeatable; without it OTEL_EXPORTER_OTLP_HEADERS is read, which keeps the value off the command line)", func(v string) error {
		o.headers = append(o.headers, v)
		return nil
	})
	fs.IntVar(&o.queue, "otlp-queue", otlp.DefaultQueue, "with --otlp-endpoint: events that may wait for the exporter; past it they are dropped and counted (agentg_otlp_dropped_spans_total), never waited for")
}

// config is the OTLP part of app.Config, its values checked; zero when
// the export is off.
func (o *otlpFlags) config() (app.OTLPConfig, error) {
	if o.endpoint == "" {
		if len(o.headers) > 0 {
			return app.OTLPConfig{}, errors.New("--otlp-header wants --otlp-endpoint")
		}
		return app.OTLPConfig{}, nil
	}
	if _, err := otlp.ParseEndpoint(o.endpoint); err != nil {
		return app.OTLPConfig{}, fmt.Errorf("--otlp-endpoint: %w", err)
	}
	if o.queue <= 0 {
		return app.OTLPConfig{}, fmt.Errorf("--otlp-queue must be positive, not %d", o.queue)
	}
	c := app.OTLPConfig{Endpoint: o.endpoint, Queue: o.queue}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, "=")
		name = strings.TrimSpace(name)
		// The value is never shown: it is a token as often as not.
		switch {
		case !ok || name == "":
			return app.OTLPConfig{}, errors.New("--otlp-header: want NAME=VALUE")
		case !httpguts.ValidHeaderFieldName(name):
			return app.OTLPConfig{}, fmt.Errorf("--otlp-header %q: not a header name", name)
		case !httpguts.ValidHeaderFieldValue(value):
			return app.OTLPConfig{}, fmt.Errorf("--otlp-header %s: the value has a character a header cannot carry", name)
		}
		if c.Headers == nil {
			c.Headers = map[string]string{}
		}
		c.Headers[textproto.CanonicalMIMEHeaderKey(name)] = value
	}
	return c, nil
}
