//go:build pprof

package main

// Built with -tags pprof, agentg serves net/http/pprof on the loopback
// address in AGENTG_PPROF (or the next free port after it, so that the
// benchmark's side-by-side processes each get one), for profiling it
// under load.

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
)

func init() {
	a := os.Getenv("AGENTG_PPROF")
	if a == "" {
		return
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return
	}
	p, _ := strconv.Atoi(port)
	for i := 0; i < 16; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+i)))
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "pprof on %s pid %d\n", ln.Addr(), os.Getpid())
		go http.Serve(ln, nil)
		return
	}
}
