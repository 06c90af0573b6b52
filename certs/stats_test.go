package certs

import "testing"

func TestIssuerStats(t *testing.T) {
	i := newTestIssuer(t, newTestCA(t), IssuerOptions{})
	for _, h := range []string{"a.test", "a.test", "b.test", "a.test"} {
		if _, err := i.Leaf(h); err != nil {
			t.Fatal(err)
		}
	}
	if got := i.Stats(); got != (IssuerStats{Issued: 2, CacheHits: 2}) {
		t.Fatalf("stats %+v, want 2 issued (a, b) and 2 cache hits (a twice more)", got)
	}
}
