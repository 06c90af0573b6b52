package test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// Every error a new user met in the trial says what to do: the test runs
// the binary as they did and reads what it printed.
func TestErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o700)

	// A CA certificate without its key: not "ca.crt already exists".
	half := filepath.Join(dir, "half")
	if code, out := runAgentg(t, "ca", "init", "--data-dir", half); code != 0 {
		t.Fatalf("ca init: %d\n%s", code, out)
	}
	os.Remove(filepath.Join(half, "ca.key"))
	// A DNS address something else holds (a plain UDP socket, as another
	// DNS server would have).
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, "default: allow\nhttp:\n  - deny: \"POST api.example.com/admin/**\"\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"ca key missing", []string{"serve", "--data-dir", half, "--listen", "127.0.0.1:0", "--admin", "off", "--dns", "off"}, 1,
			[]string{"its key " + filepath.Join(half, "ca.key") + " is missing", "agentg ca init --force"}},
		{"dns address in use", []string{"serve", "--data-dir", filepath.Join(dir, "d1"), "--listen", "127.0.0.1:0", "--admin", "off", "--dns", busy.LocalAddr().String()}, 1,
			[]string{"--dns off", "another address with --dns"}},
		{"unknown event kind", []string{"events", "--kind", "htpp", "--data-dir", filepath.Join(dir, "d2")}, 1,
			[]string{`--kind "htpp"`, "http, connect"}},
		{"unknown decision", []string{"events", "--decision", "allowed", "--data-dir", filepath.Join(dir, "d2")}, 1,
			[]string{`--decision "allowed"`, "allow, deny"}},
		{"warnings without --strict", []string{"check", policy}, 0,
			[]string{"cannot be enforced", "--strict makes warnings fail"}},
		{"warnings with --strict", []string{"check", "--strict", policy}, 1,
			[]string{"cannot be enforced", "1 warning(s) (--strict)"}},
	}
	if _, err := exec.LookPath("ip"); err == nil {
		tests = append(tests, struct {
			name     string
			args     []string
			wantCode int
			want     []string
		}{"netsetup print for a namespace not made yet", []string{"netsetup", "--netns", "agentg-no-such-ns", "--transparent", "0.0.0.0:15001"}, 1,
			[]string{"no network namespace agentg-no-such-ns yet", "--iface IF"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runAgentg(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// With --log-file, the serving line says where the events go, since
// stdout stays silent; and the policy's warnings are logged at start, as
// `agentg check` prints them.
func TestServeSaysWhereEventsGoAndWarns(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: "default: allow\nhttp:\n  - deny: \"POST api.example.com/admin/**\"\n"})
	if errs := a.Stderr(); !strings.Contains(errs, "events and messages go to "+a.LogFile) {
		t.Errorf("stderr does not name the log file %s:\n%s", a.LogFile, errs)
	}
	// The serving line is logged after the warnings: once it is in the
	// file, so are they.
	var logged string
	for !strings.Contains(logged, `"message":"agentg serving"`) {
		b, err := os.ReadFile(a.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		logged = string(b)
		if !strings.Contains(logged, `"message":"agentg serving"`) {
			select {
			case <-a.Exited():
				t.Fatalf("agentg exited:\n%s", a.Stderr())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if !strings.Contains(logged, `"events":"`+a.LogFile+`"`) {
		t.Errorf("the serving line does not name the log file:\n%s", logged)
	}
	if !strings.Contains(logged, "policy warning: http rule") || !strings.Contains(logged, "cannot be enforced") {
		t.Errorf("serve did not log the policy's warning:\n%s", logged)
	}
}
