package admin

import (
	"io"
	"testing"
	"time"

	"github.com/agentg/agentg/audit"
)

// The metrics' share of a logged DNS query: one event observed.
func BenchmarkObserveDNS(b *testing.B) {
	m := newMetrics(Gauges{}, audit.New(io.Discard), func() int { return 0 }, func() uint64 { return 0 })
	e := &audit.Event{Kind: "dns", Decision: "allow", Rule: "dns:default", Duration: 300 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		m.observe(e, "dns:default")
	}
}
