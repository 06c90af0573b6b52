package test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// agentg runs its collector at --gc-percent, else at GOGC from its
// environment, else at 400; the runtime's own gauge says which it got.
func TestGCPercent(t *testing.T) {
	t.Parallel()
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") })
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want float64
	}{
		{"default", env, nil, 400},
		{"GOGC", append(slices.Clip(env), "GOGC=150"), nil, 150},
		{"flag over GOGC", append(slices.Clip(env), "GOGC=150"), []string{"--gc-percent", "250"}, 250},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := startAdminAgentg(t, testenv.AgentgConfig{Env: c.env, Args: c.args})
			if got := metricValue(metricsOf(t, a), "go_gc_gogc_percent", nil); got != c.want {
				t.Errorf("go_gc_gogc_percent %v, want %v", got, c.want)
			}
		})
	}
	for _, bad := range []string{"0", "-5", "lots"} {
		code, out := runAgentg(t, "serve", "--gc-percent", bad)
		if code != 2 || !strings.Contains(out, "a positive number or off") {
			t.Errorf("--gc-percent %s: exit %d, %q", bad, code, out)
		}
	}
}
