package admin

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestNetwork(t *testing.T) {
	tests := []struct{ in, network, address string }{
		{"127.0.0.1:9090", "tcp", "127.0.0.1:9090"},
		{"[::1]:0", "tcp", "[::1]:0"},
		{"unix:/run/agentg.sock", "unix", "/run/agentg.sock"},
		{"off", "", ""},
		{"unix:", "", ""},
		{"9090", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		n, a, err := Network(tt.in)
		if n != tt.network || a != tt.address || (err == nil) != (tt.network != "") {
			t.Errorf("Network(%q) = %q %q %v, want %q %q", tt.in, n, a, err, tt.network, tt.address)
		}
	}
}

func TestListenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v, want 0600", st.Mode(), err)
	}
	if _, err := Listen("unix:" + path); err == nil {
		t.Fatal("a second listener took a socket something listens on")
	}
	// A socket left behind by a process that died is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = Listen("unix:" + path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
	plain := filepath.Join(t.TempDir(), "file")
	os.WriteFile(plain, nil, 0o600)
	if _, err := Listen("unix:" + plain); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
}
