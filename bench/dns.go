package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/agentg/agentg/audit"
	"github.com/agentg/agentg/dnsfilter"
	"github.com/agentg/agentg/rules"
)

// The DNS benchmark: dnsperf (Debian package dnsperf) against a loopback
// upstream directly, against dnsmasq forwarding to it, and against
// agentg's DNS filter (its own process) forwarding to it, with a
// denylist of DNSDenylistSize names loaded into both agentg and dnsmasq.
// Workloads: cached (a small set of names asked again and again, after a
// warm-up pass), uncached (every name new, so every query goes upstream)
// and blocked (names on the denylist).

// DNSZone is the suffix the upstream answers for: every name under it has
// an A record in 198.18.0.0/15 (RFC 2544's benchmarking range), TTL 3600.
const DNSZone = "bench.test"

// DNSDenylistSize is the number of names in the denylist.
const DNSDenylistSize = 1_000_000

// DNSUpstream is the synthetic upstream: a miekg/dns server on loopback,
// one UDP socket per CPU (SO_REUSEPORT), answering any name.
type DNSUpstream struct {
	Addr    string
	servers []*dns.Server
}

// StartDNSUpstream starts it, on a loopback port free for UDP and TCP.
func StartDNSUpstream() (*DNSUpstream, error) {
	var err error
	for range 10 {
		var u *DNSUpstream
		if u, err = startDNSUpstream(); err == nil {
			return u, nil
		}
	}
	return nil, err
}

func startDNSUpstream() (*DNSUpstream, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	u := &DNSUpstream{Addr: addr}
	h := dns.HandlerFunc(answerSynthetic)
	start := func(s *dns.Server) error {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- s.ListenAndServe() }()
		select {
		case <-started:
			u.servers = append(u.servers, s)
			return nil
		case err := <-errc:
			return fmt.Errorf("dns upstream on %s/%s: %w", addr, s.Net, err)
		}
	}
	for i := 0; i < max(2, runtime.NumCPU()); i++ {
		if err := start(&dns.Server{Addr: addr, Net: "udp", Handler: h, ReusePort: true}); err != nil {
			u.Close()
			return nil, err
		}
	}
	if err := start(&dns.Server{Addr: addr, Net: "tcp", Handler: h}); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// Close stops the upstream.
func (u *DNSUpstream) Close() {
	for _, s := range u.servers {
		s.Shutdown()
	}
}

func answerSynthetic(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case !strings.HasSuffix(name, "."+DNSZone+"."):
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			h := fnv.New32a()
			io.WriteString(h, name)
			v := h.Sum32()
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600},
				A: net.IPv4(198, 18+byte(v>>16)&1, byte(v>>8), byte(v)).To4()})
		}
	}
	w.WriteMsg(m)
}

// WriteDNSInputs writes, into dir, the denylist in agentg's plain list
// format (denylist.txt) and as dnsmasq configuration (denylist.conf), and
// the dnsperf query files: cached.txt (names distinct names), blocked.txt
// (names from the denylist) and uncached.txt (unique names, never asked
// before).
func WriteDNSInputs(dir string, names, unique int) error {
	write := func(name string, fn func(w *bufio.Writer)) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		fn(w)
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	deny := func(i int) string { return fmt.Sprintf("ad%x.track%d.example", i*2654435761%(1<<32), i%977) }
	if err := write("denylist.txt", func(w *bufio.Writer) {
		for i := range DNSDenylistSize {
			w.WriteString(deny(i))
			w.WriteByte('\n')
		}
	}); err != nil {
		return err
	}
	if err := write("denylist.conf", func(w *bufio.Writer) {
		for i := range DNSDenylistSize {
			w.WriteString("address=/" + deny(i) + "/\n") // NXDOMAIN
		}
	}); err != nil {
		return err
	}
	if err := write("cached.txt", func(w *bufio.Writer) {
		for i := range names {
			fmt.Fprintf(w, "c%d.%s A\n", i, DNSZone)
		}
	}); err != nil {
		return err
	}
	if err := write("blocked.txt", func(w *bufio.Writer) {
		for i := range names {
			fmt.Fprintf(w, "%s A\n", deny(i*997%DNSDenylistSize))
		}
	}); err != nil {
		return err
	}
	nonce := time.Now().UnixNano() % 1e9 // names no earlier run cached
	return write("uncached.txt", func(w *bufio.Writer) {
		for i := range unique {
			fmt.Fprintf(w, "u%d-%d.%s A\n", i, nonce, DNSZone)
		}
	})
}

// DNSPolicy is agentg's policy for the run: the denylist, the upstream,
// the benchmarking range opened (its answers are non-public), the
// per-agent guards off (one client asks everything), log as given.
func DNSPolicy(upstream, log string) string {
	return fmt.Sprintf(`default: allow
lists:
  - path: denylist.txt
    format: plain
    id-prefix: denylist
ips:
  - allow: 198.18.0.0/15
dns:
  upstreams: ["%s"]
  log: %s
  cache:
    max_entries: 1000000
    max_size: 512MiB
  limits:
    subdomains: off
    query_rate: off
`, upstream, log)
}

// StartDnsmasq runs dnsmasq as a caching forwarder to upstream with the
// denylist, on a free loopback port; stop it with the returned function.
func StartDnsmasq(dir, upstream string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/dnsmasq"); e == nil {
			bin = "/usr/sbin/dnsmasq"
		} else {
			return "", nil, errors.New("dnsmasq not installed (Debian package dnsmasq-base)")
		}
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = pc.LocalAddr().String()
	pc.Close()
	_, port, _ := net.SplitHostPort(addr)
	uh, up, _ := net.SplitHostPort(upstream)
	cmd := exec.Command(bin, "--keep-in-foreground", "--no-daemon", "--no-resolv", "--no-hosts", "--no-poll",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port="+port, "--server="+uh+"#"+up,
		"--cache-size=1000000", "--conf-file="+filepath.Join(dir, "denylist.conf"), "--user=root", "--pid-file=",
		"--log-facility="+filepath.Join(dir, "dnsmasq.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	// Loading a million names takes a while: wait until it answers.
	deadline := time.Now().Add(6 * time.Minute)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	for {
		m := new(dns.Msg)
		m.SetQuestion("ready."+DNSZone+".", dns.TypeA)
		if r, _, err := c.Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("dnsmasq on %s not answering", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// DNSPerfResult is what one dnsperf run measured.
type DNSPerfResult struct {
	QPS       float64
	LatencyMS float64 // average
	Lost      int
	Completed int
}

var (
	reQPS       = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLatency   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	reLost      = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
	reCompleted = regexp.MustCompile(`Queries completed:\s+([0-9]+)`)
)

// DNSPerf runs dnsperf against addr with the query file; seconds > 0
// loops over the file for that long, 0 runs through it once.
func DNSPerf(ctx context.Context, addr, file string, seconds int) (DNSPerfResult, error) {
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"-s", host, "-p", port, "-d", file, "-c", "8", "-T", "2", "-q", "500", "-t", "2"}
	if seconds > 0 {
		args = append(args, "-l", strconv.Itoa(seconds))
	} else {
		args = append(args, "-n", "1")
	}
	out, err := exec.CommandContext(ctx, "dnsperf", args...).CombinedOutput()
	if err != nil {
		return DNSPerfResult{}, fmt.Errorf("dnsperf: %w\n%s", err, out)
	}
	var r DNSPerfResult
	if m := reQPS.FindSubmatch(out); m != nil {
		r.QPS, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reLatency.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		r.LatencyMS = v * 1000
	}
	if m := reLost.FindSubmatch(out); m != nil {
		r.Lost, _ = strconv.Atoi(string(m[1]))
	}
	if m := reCompleted.FindSubmatch(out); m != nil {
		r.Completed, _ = strconv.Atoi(string(m[1]))
	}
	if r.QPS == 0 {
		return r, fmt.Errorf("dnsperf printed no rate:\n%s", out)
	}
	return r, nil
}

// DNSCacheMemory fills an in-process filter's cache with n names from
// upstream, through the proxy's resolver, and returns the Go heap it
// grew by (after a collection) and the cache's own estimate.
func DNSCacheMemory(upstream string, n int) (heap uint64, estimate int64, err error) {
	pol := fmt.Sprintf("default: allow\nips:\n  - allow: 198.18.0.0/15\ndns:\n  upstreams: [\"%s\"]\n  cache:\n    max_entries: %d\n    max_size: 1GiB\n", upstream, n*2)
	eng, err := rules.Parse("memory.yaml", []byte(pol))
	if err != nil {
		return 0, 0, err
	}
	srv, err := dnsfilter.New(dnsfilter.Config{Policy: staticPolicy{eng}, Log: audit.New(io.Discard)})
	if err != nil {
		return 0, 0, err
	}
	res := srv.Resolver()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	for i := range n {
		ips, err := res.LookupNetIP(ctx, "ip4", fmt.Sprintf("m%d.%s", i, DNSZone))
		if err != nil || len(ips) != 1 || !netip.MustParsePrefix("198.18.0.0/15").Contains(ips[0]) {
			return 0, 0, fmt.Errorf("lookup %d: %v %v", i, ips, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	m := srv.Metrics()
	if m.CacheEntries != n {
		return 0, 0, fmt.Errorf("cache holds %d entries, want %d", m.CacheEntries, n)
	}
	runtime.KeepAlive(srv)
	return after.HeapAlloc - before.HeapAlloc, m.CacheBytes, nil
}

type staticPolicy struct{ e *rules.Engine }

func (p staticPolicy) Engine() *rules.Engine { return p.e }
