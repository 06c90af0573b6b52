package wire

import (
	"net/http"
	"testing"
)

func TestIsUpgrade(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{}, false},
		{http.Header{"Connection": {"keep-alive"}}, false},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
		{http.Header{"Connection": {"keep-alive, UPGRADE"}}, true},
		{http.Header{"Upgrade": {"h2c"}}, true},
	} {
		if got := IsUpgrade(tc.h); got != tc.want {
			t.Errorf("IsUpgrade(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
