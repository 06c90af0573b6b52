//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The namespace bench works: every scenario in every mode completes
// without errors, and each run went where its mode says (direct past
// agentg, explicit through its explicit listener, transparent through the
// redirect to its transparent listener).
func TestNetnsHarness(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the transparent bench builds network namespaces: needs root")
	}
	_, nft := exec.LookPath("nft")
	_, ipt := exec.LookPath("iptables-restore")
	if _, err := exec.LookPath("ip"); err != nil || nft != nil && ipt != nil {
		t.Skip("the transparent bench needs ip and nft or iptables (scripts/test.sh installs them)")
	}
	e, err := StartNetns(NetnsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.Contains(e.Rules, "rbt") {
		t.Fatalf("netsetup's rules name no redirected interface:\n%s", e.Rules)
	}
	// settled counts once everything before it is in the log: a marker
	// request through each door, and its event, come after every event of
	// the runs before (agentg flushes its log every 100 ms, so counts
	// that stop changing for a while prove nothing).
	markers := 0
	settled := func() (int64, int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		markers++
		for _, m := range []Mode{Agentg, Transparent} {
			if err := e.Marker(ctx, m, fmt.Sprintf("%s-%d", m, markers)); err != nil {
				t.Fatal(err)
			}
		}
		return e.DoorEvents()
	}
	for _, sc := range Scenarios {
		for _, m := range []Mode{Direct, Agentg, Transparent} {
			tr0, ex0 := settled()
			r := run(e, sc, m, brief)
			checkResult(t, sc, r)
			tr, ex := settled()
			tr, ex = tr-tr0, ex-ex0
			switch {
			case m == Direct && tr+ex != 0:
				t.Errorf("%s direct: agentg logged %d transparent and %d explicit events", sc.Name, tr, ex)
			case m == Agentg && (ex == 0 || tr != 0):
				t.Errorf("%s explicit: %d explicit and %d transparent events", sc.Name, ex, tr)
			case m == Transparent && (tr == 0 || ex != 0):
				t.Errorf("%s transparent: %d transparent and %d explicit events", sc.Name, tr, ex)
			}
		}
	}
}
