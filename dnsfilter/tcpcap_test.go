package dnsfilter

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestTCPConnCap: the filter serves at most MaxTCPConns TCP connections
// at once. With the cap's worth held open and idle, a further client's
// query is not answered; once one held connection ends, the same query
// on the same connection is (the evidence that it waited for a slot
// rather than being lost or served).
func TestTCPConnCap(t *testing.T) {
	e := startFilter(t, "default: allow\n", envOptions{maxTCP: 2, noClock: true})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		held = append(held, c)
	}
	// Each held connection is served: one query answered on each proves
	// the filter accepted it (and the cap is taken).
	for _, c := range held {
		if _, err := chaosOn(c, 5*time.Second); err != nil {
			t.Fatalf("a held connection was not served: %v", err)
		}
	}

	extra, err := net.Dial("tcp", e.addr) // the kernel's backlog takes it
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	co := &dns.Conn{Conn: extra}
	m := chaosQuery()
	if err := co.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if r, err := co.ReadMsg(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the cap was served: %v, %v", r, err)
	}

	held[0].Close() // a slot frees: the waiting connection is accepted
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := co.ReadMsg()
	if err != nil || r.Id != m.Id {
		t.Fatalf("the waiting connection's query after a slot freed: %v, %v", r, err)
	}
}

// chaosQuery is a query the filter refuses at once (class CHAOS):
// nothing goes upstream.
func chaosQuery() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion("cap.invalid.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	return m
}

// chaosOn sends chaosQuery on c and reads its answer within d.
func chaosOn(c net.Conn, d time.Duration) (*dns.Msg, error) {
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(chaosQuery()); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	return co.ReadMsg()
}
