//go:build linux

package bench

import (
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
	settled := func() (int64, int64) {
		// Tunnels are logged as they close: wait until the counts stop.
		tr, ex := e.DoorEvents()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			t2, e2 := e.DoorEvents()
			if t2 == tr && e2 == ex {
				break
			}
			tr, ex = t2, e2
		}
		return tr, ex
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
