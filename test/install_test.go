package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentg/agentg/internal/testenv"
)

// agentg version and --version name the binary as Go's own tool reads
// it: `go version -m` is the judge of the module version and of the VCS
// revision the build recorded (none when the build was told
// -buildvcs=false, as GOFLAGS may say).
func TestVersionMatchesBuildInfo(t *testing.T) {
	out, err := exec.Command(testenv.GoTool(), "version", "-m", agentgBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var goVersion, revision string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && strings.HasSuffix(f[0], ":"):
			goVersion = f[1] // "/path/agentg: go1.26.0"
		case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			revision = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, got := runAgentg(t, args...)
		if code != 0 {
			t.Fatalf("agentg %v: exit %d\n%s", args, code, got)
		}
		if !strings.HasPrefix(got, "agentg dev (") || !strings.Contains(got, goVersion+")") {
			t.Errorf("agentg %v = %q: want the version and %s", args, got, goVersion)
		}
		if revision != "" && !strings.Contains(got, "revision "+revision[:12]) {
			t.Errorf("agentg %v = %q: the build recorded revision %s", args, got, revision)
		}
		if revision == "" && strings.Contains(got, "revision") {
			t.Errorf("agentg %v = %q: the build recorded no revision", args, got)
		}
	}
}

// The bash completion script, loaded in a real bash, completes commands,
// subcommands and flags from the binary's own help; and completing after
// `approve ID` asks for help only, so nothing is approved (the command
// would need an admin API, and none answers: an attempt would print its
// error, which the candidates would then lack the flags of).
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	code, script := runAgentg(t, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: %d\n%s", code, script)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agentg.bash"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string   // what was typed, the cursor at its end
		want []string // among the candidates
		not  []string // never among them
	}{
		{"agentg se", []string{"serve", "secrets"}, []string{"check"}},
		{"agentg ca ", []string{"init", "export", "show", "trust-env"}, nil},
		{"agentg ca init --f", []string{"--force"}, nil},
		{"agentg mcp egress ", []string{"learn"}, nil},
		{"agentg serve --li", []string{"--listen"}, []string{"--force"}},
		{"agentg approve 42 --s", []string{"--scope"}, nil},
		{"agentg --v", []string{"--version"}, nil},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.line)
		if strings.HasSuffix(tt.line, " ") {
			words = append(words, "")
		}
		var arr strings.Builder
		for _, w := range words {
			arr.WriteString(" '" + w + "'")
		}
		prog := "source " + filepath.Join(dir, "agentg.bash") + "\n" +
			"COMP_WORDS=(" + arr.String() + ")\n" +
			"COMP_CWORD=" + itoa(len(words)-1) + "\n" +
			"_agentg\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(agentgBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: bash: %v\n%s", tt.line, err, stderr.Bytes())
		}
		got := strings.Fields(string(out))
		for _, w := range tt.want {
			if !containsString(got, w) {
				t.Errorf("%q: candidates %q lack %q", tt.line, got, w)
			}
		}
		for _, w := range tt.not {
			if containsString(got, w) {
				t.Errorf("%q: candidates %q hold %q", tt.line, got, w)
			}
		}
	}
	for _, sh := range []string{"zsh", "fish"} {
		if code, out := runAgentg(t, "completion", sh); code != 0 || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: %d\n%s", sh, code, out)
		}
	}
	if code, _ := runAgentg(t, "completion", "tcsh"); code == 0 {
		t.Error("completion tcsh exited 0")
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// agentg healthcheck (the Dockerfile's HEALTHCHECK) asks the probes,
// which need no token, and its exit status says what they answered.
func TestHealthcheckCommand(t *testing.T) {
	a := startAdminAgentg(t, testenv.AgentgConfig{Policy: "default: allow\n"})
	for _, args := range [][]string{{"healthcheck", "--admin", a.AdminAddr}, {"healthcheck", "--admin", a.AdminAddr, "--ready"}} {
		if code, out := runAgentg(t, args...); code != 0 || !strings.Contains(out, "agentg at "+a.AdminAddr) {
			t.Errorf("%v: %d %s", args, code, out)
		}
	}
	a.Stop(5 * time.Second)
	if code, out := runAgentg(t, "healthcheck", "--admin", a.AdminAddr); code != 1 || !strings.Contains(out, "no agentg admin API listens there") {
		t.Errorf("healthcheck of a stopped agentg: %d %s", code, out)
	}
}
