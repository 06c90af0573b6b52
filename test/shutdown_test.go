package test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// In-flight requests finish during a graceful shutdown, and new
// connections are refused.
func TestGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	up := newUpstream(t, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "slow but complete")
	}))
	e := startInProcess(t, basePolicy("hosts:\n  - allow: allowed.test\n"))
	c := e.client("", "", nil)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://allowed.test:" + up.port + "/")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.app.Shutdown(ctx, "test"); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.body != "slow but complete" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if c, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		c.Close()
		t.Fatal("proxy still accepts connections after shutdown")
	}
}

// A tunnel still open when the grace period ends is closed, and its event
// is written.
func TestShutdownClosesTunnels(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c) // echo, forever
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	e := startInProcess(t, basePolicy("hosts:\n  - allow: allowed.test\n"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT allowed.test:"+port+" HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
	buf := make([]byte, 512)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:12]) != "HTTP/1.1 200" {
		t.Fatalf("CONNECT: %q %v", buf[:n], err)
	}
	// A protocol the gate can tell is neither TLS nor HTTP/1 from its
	// first byte passes opaque.
	io.WriteString(c, "\x00png")
	if n, _ := io.ReadFull(c, buf[:4]); n != 4 || string(buf[:4]) != "\x00png" {
		t.Fatalf("echo through tunnel: %q", buf[:n])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	e.app.Shutdown(ctx, "test")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("tunnel still open after shutdown")
	}
	e.waitEvent(map[string]any{"kind": "connect", "host": "allowed.test", "bytes_up": 4, "bytes_down": 4})
}
