package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the collector's target agentg runs with unless told
// otherwise. A proxy's live heap is small (pools, the policy, a cache) and
// nearly all it allocates dies with the request, so Go's default of 100
// collects many times a second under load: on the proxy bench it was a
// quarter of agentg's CPU per request. At 400 the heap may grow to five
// times what is live before a collection; GOMEMLIMIT still caps it.
const defaultGCPercent = 400

// gcFlags is serve's --gc-percent. Given, it wins; absent, GOGC in the
// environment keeps the meaning it has for every Go program, and only
// without either does agentg set defaultGCPercent.
type gcFlags struct {
	percent int
	set     bool
}

func (g *gcFlags) register(fs *flag.FlagSet) {
	fs.Func("gc-percent", fmt.Sprintf("the Go collector's target, as GOGC: collect when the heap has grown `N` percent over what is live, or off (default %d unless GOGC is set; GOMEMLIMIT caps memory either way)", defaultGCPercent), func(v string) error {
		if v == "off" {
			g.percent, g.set = -1, true
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("a positive number or off, not %q", v)
		}
		g.percent, g.set = n, true
		return nil
	})
}

// apply sets the collector's target for this process.
func (g gcFlags) apply() {
	switch {
	case g.set:
		debug.SetGCPercent(g.percent)
	case os.Getenv("GOGC") == "":
		debug.SetGCPercent(defaultGCPercent)
	}
}
