package wire

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// IsUpgrade reports a request that asks to switch protocols, by either
// header: a forwarder that relays upgrades acts on Connection: upgrade,
// and an Upgrade header alone is refused too, as what it is for. The
// proxy hands such a request on any path of a governed host to the guard.
func IsUpgrade(h http.Header) bool {
	return len(h.Values("Upgrade")) > 0 || httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
}
