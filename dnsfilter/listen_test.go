package dnsfilter

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/internal/testenv"
)

// ListenMore opens more UDP sockets on Listen's address (SO_REUSEPORT),
// and the filter answers on every one: clients spread over them by
// address, and each client gets its answer.
func TestListenMore(t *testing.T) {
	u := startUpstream(t, testenv.DNSUpstreamOptions{Records: zone})
	pol := &livePolicy{}
	pol.e.Store(compile(t, t.TempDir(), policyWith(u, "", "")))
	srv, err := New(Config{Policy: pol, Log: audit.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	more, err := ListenMore(pc, 3)
	if err != nil {
		t.Fatalf("ListenMore: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	for _, c := range append(more, pc) {
		if c.LocalAddr().String() != pc.LocalAddr().String() {
			t.Fatalf("extra socket on %s, want %s", c.LocalAddr(), pc.LocalAddr())
		}
		go srv.ServePacket(c)
	}
	go srv.ServeListener(ln)

	// Without SO_REUSEPORT on the first socket, no other may bind it.
	plain, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := ListenMore(plain, 1); err == nil {
		t.Error("ListenMore bound a socket that did not ask for SO_REUSEPORT")
	}

	for i := range 32 { // 32 client sockets: some land on each server socket
		c := &dns.Client{Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion("allowed.example.", dns.TypeA)
		r, _, err := c.Exchange(m, pc.LocalAddr().String())
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("client %d: %v %v", i, r, err)
		}
	}
}
