package rules

import (
	"strings"
	"testing"
)

// dns.memory, or dns.cache.max_size as older policies spell it, is the
// one budget of the cache and the IP bindings: two thirds and a third.
func TestDNSMemoryBudget(t *testing.T) {
	for _, tt := range []struct {
		dns                     string
		memory, cache, bindings int64
		err                     string
	}{
		{"", DefaultDNSMemory, DefaultDNSCacheBytes, DefaultDNSMemory - DefaultDNSCacheBytes, ""},
		{"dns:\n  block: refused\n", DefaultDNSMemory, DefaultDNSCacheBytes, DefaultDNSMemory - DefaultDNSCacheBytes, ""},
		{"dns:\n  memory: 48MiB\n", 48 << 20, 32 << 20, 16 << 20, ""},
		{"dns:\n  cache:\n    max_size: 3MiB\n", 3 << 20, 2 << 20, 1 << 20, ""},
		{"dns:\n  memory: 8MiB\n  cache:\n    max_size: 4MiB\n", 0, 0, 0, "set one"},
		{"dns:\n  memory: 10KiB\n", 0, 0, 0, "bad"},
	} {
		e, err := Parse("p.yaml", []byte("default: allow\n"+tt.dns))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.dns, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.dns, err)
		}
		s := e.DNS()
		if s.Memory != tt.memory || s.Cache.MaxBytes != tt.cache || s.BindingsBytes != tt.bindings {
			t.Errorf("%q: memory %d cache %d bindings %d", tt.dns, s.Memory, s.Cache.MaxBytes, s.BindingsBytes)
		}
	}
}
