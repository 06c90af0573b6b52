package dnsfilter

import (
	"io"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
)

// BenchmarkCachedQuery is one cached answer through the handler (no
// socket): what the filter itself costs per query on its hottest path.
func BenchmarkCachedQuery(b *testing.B) { benchCached(b, "none", audit.New(io.Discard)) }

// BenchmarkCachedQueryLogged is the same with every query's event
// written, to a buffered log as `agentg serve --log-file` writes it.
func BenchmarkCachedQueryLogged(b *testing.B) {
	l := audit.NewWithOptions(io.Discard, audit.Options{FlushInterval: 100 * time.Millisecond})
	defer l.Close()
	benchCached(b, "all", l)
}

func benchCached(b *testing.B, log string, l *audit.Logger) {
	up, err := testenv.StartDNSUpstream(testenv.DNSUpstreamOptions{Records: zone})
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	pol := &livePolicy{}
	pol.e.Store(compile(b, b.TempDir(), "default: allow\ndns:\n  log: "+log+"\n  upstreams: [\""+up.Addr+"\"]\n  limits:\n    query_rate: off\n"))
	srv, err := New(Config{Policy: pol, Log: l})
	if err != nil {
		b.Fatal(err)
	}
	req := new(dns.Msg)
	req.SetQuestion("allowed.example.", dns.TypeA)
	req.SetEdns0(1232, false)
	w := &recorder{}
	srv.ServeDNS(w, req) // a miss: from the upstream
	srv.ServeDNS(w, req) // a hit, full path: leaves the wire bytes
	srv.ServeDNS(w, req) // a hit from the wire bytes
	if len(w.msg.Answer) != 1 || w.n != 3 {
		b.Fatal(w.msg)
	}
	w.discard = true
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		srv.ServeDNS(w, req)
	}
}
