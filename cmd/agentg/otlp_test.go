package main

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/app"
)

func TestParseServeOTLP(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want app.OTLPConfig
		err  string // in the error; the value of a header never is
	}{
		{name: "off by default", args: nil, want: app.OTLPConfig{}},
		{name: "endpoint with the default queue", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318"},
			want: app.OTLPConfig{Endpoint: "http://127.0.0.1:4318", Queue: 4096}},
		{name: "headers and queue", args: []string{"--otlp-endpoint", "https://otel.example/v1/traces", "--otlp-queue", "8",
			"--otlp-header", "authorization=Bearer tok-hdr-3b1", "--otlp-header", "X-Tenant=a=b"},
			want: app.OTLPConfig{Endpoint: "https://otel.example/v1/traces", Queue: 8,
				Headers: map[string]string{"Authorization": "Bearer tok-hdr-3b1", "X-Tenant": "a=b"}}},
		{name: "header without endpoint", args: []string{"--otlp-header", "A=tok-hdr-3b1"}, err: "--otlp-header wants --otlp-endpoint"},
		{name: "not a URL", args: []string{"--otlp-endpoint", "127.0.0.1:4318"}, err: "--otlp-endpoint: OTLP endpoint: not a URL"},
		{name: "credentials in the URL", args: []string{"--otlp-endpoint", "http://u:tok-hdr-3b1@127.0.0.1:4318"}, err: "credentials is refused"},
		{name: "queue", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318", "--otlp-queue", "0"}, err: "--otlp-queue must be positive"},
		{name: "header without =", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318", "--otlp-header", "tok-hdr-3b1"}, err: "want NAME=VALUE"},
		{name: "bad header name", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318", "--otlp-header", "a b=tok-hdr-3b1"}, err: "not a header name"},
		{name: "bad header value", args: []string{"--otlp-endpoint", "http://127.0.0.1:4318", "--otlp-header", "A=tok-hdr-3b1\r\nX: y"},
			err: "--otlp-header A: the value has a character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := parseServe(tc.args, io.Discard, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "tok-hdr-3b1") {
					t.Fatalf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.OTLP, tc.want) {
				t.Fatalf("%+v, want %+v", cfg.OTLP, tc.want)
			}
		})
	}
}

// serve --help lists the OTLP flags.
func TestServeHelpOTLP(t *testing.T) {
	var stderr strings.Builder
	parseServe([]string{"--help"}, io.Discard, &stderr)
	for _, f := range []string{"otlp-endpoint", "otlp-header", "otlp-queue"} {
		if !strings.Contains(stderr.String(), "\n  -"+f+" ") {
			t.Errorf("--help does not list -%s", f)
		}
	}
}
