package admin

import (
	"sync"
	"sync/atomic"
	"testing"
)

// A CLI reading the address while agentg rewrites it sees the old address
// or the new, never a part of one (WriteAddr is atomic).
func TestAddrFileReadWhileWritten(t *testing.T) {
	dir := t.TempDir()
	addrs := []string{"127.0.0.1:9901", "unix:/run/agentg/admin-with-a-longer-path.sock"}
	if err := WriteAddr(dir, addrs[0]); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100 && !t.Failed(); i++ {
			if err := WriteAddr(dir, addrs[i%2]); err != nil {
				t.Error(err)
				return
			}
		}
		stop.Store(true)
	}()
	reads := 0
	for !stop.Load() {
		got, err := ReadAddr(dir)
		if err != nil || (got != addrs[0] && got != addrs[1]) {
			t.Fatalf("read %d while written: %q, %v", reads, got, err)
		}
		reads++
	}
	wg.Wait()
	if reads == 0 {
		t.Fatal("no read ran while the address was written")
	}
}
