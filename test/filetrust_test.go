package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 20: agentg trusted files another local user could have
// written. A token planted (by another user) in a world-writable data
// directory became the admin token, and a webhook secret readable by
// others was accepted. The other user here is uid 65534 (nobody): the
// test chowns files to it, which needs root.
func TestServeRefusesUntrustedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test plays another local user by chowning files to uid 65534")
	}
	const nobody = 65534
	const planted = "planted-by-another-user-0123456789"
	writeAs := func(t *testing.T, path, body string, mode os.FileMode, uid int) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, mode)
		if err := os.Chown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	secret := func(t *testing.T, dir string, mode os.FileMode, uid int) string {
		p := filepath.Join(dir, "webhook.secret")
		writeAs(t, p, "0123456789abcdef0123456789abcdef\n", mode, uid)
		return p
	}
	tests := []struct {
		name string
		// setup prepares dir and returns the data directory and more
		// serve flags.
		setup func(t *testing.T, dir string) (string, []string)
		want  []string // in agentg's refusal
	}{
		{"world-writable data directory with a planted token", func(t *testing.T, dir string) (string, []string) {
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o777)
			os.Chmod(data, 0o777)
			writeAs(t, filepath.Join(data, "admin.token"), planted+"\n", 0o600, nobody)
			return data, nil
		}, []string{"data directory", "0777", "chmod 755"}},
		{"sticky world-writable data directory", func(t *testing.T, dir string) (string, []string) {
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o700)
			os.Chmod(data, 0o777|os.ModeSticky)
			return data, nil
		}, []string{"data directory", "chmod 755"}},
		{"data directory under a world-writable one", func(t *testing.T, dir string) (string, []string) {
			shared := filepath.Join(dir, "shared")
			os.Mkdir(shared, 0o777)
			os.Chmod(shared, 0o777)
			data := filepath.Join(shared, "data")
			os.Mkdir(data, 0o700)
			return data, nil
		}, []string{"data directory", "shared above it has mode 0777", "chmod go-w"}},
		{"data directory of another user", func(t *testing.T, dir string) (string, []string) {
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o755)
			os.Chown(data, nobody, nobody)
			return data, nil
		}, []string{"owned by uid 65534", "chown 0"}},
		{"token planted in the data directory", func(t *testing.T, dir string) (string, []string) {
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o700)
			writeAs(t, filepath.Join(data, "admin.token"), planted+"\n", 0o600, nobody)
			return data, nil
		}, []string{"admin token", "owned by uid 65534"}},
		{"admin token file of another user", func(t *testing.T, dir string) (string, []string) {
			tok := filepath.Join(dir, "token")
			writeAs(t, tok, planted+"\n", 0o600, nobody)
			return "", []string{"--admin-token-file", tok}
		}, []string{"admin token", "owned by uid 65534"}},
		{"webhook secret readable by others", func(t *testing.T, dir string) (string, []string) {
			return "", []string{"--approvals-webhook", "http://127.0.0.1:9/hook", "--approvals-webhook-secret-file", secret(t, dir, 0o644, 0)}
		}, []string{"webhook secret", "0644", "chmod 640"}},
		{"webhook secret of another user", func(t *testing.T, dir string) (string, []string) {
			return "", []string{"--approvals-webhook", "http://127.0.0.1:9/hook", "--approvals-webhook-secret-file", secret(t, dir, 0o600, nobody)}
		}, []string{"webhook secret", "owned by uid 65534"}},
		{"CA key of another user", func(t *testing.T, dir string) (string, []string) {
			data := filepath.Join(dir, "data")
			if code, out := runAgentg(t, "ca", "init", "--data-dir", data); code != 0 {
				t.Fatalf("ca init: %d\n%s", code, out)
			}
			os.Chown(filepath.Join(data, "ca.key"), nobody, nobody)
			return data, nil
		}, []string{"CA key", "owned by uid 65534"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data, args := tt.setup(t, dir)
			cfg := testenv.AgentgConfig{Binary: agentgBin, Dir: dir, DataDir: data, Args: args}
			a, err := testenv.StartAgentg(cfg)
			if err == nil {
				a.Kill()
				t.Fatalf("agentg started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal does not mention %q:\n%v", w, err)
				}
			}
		})
	}

	// The same layouts made right start: a provided file a group may
	// read, a data directory under a sticky /tmp-like one.
	t.Run("trusted", func(t *testing.T) {
		dir := t.TempDir()
		tmp := filepath.Join(dir, "tmp")
		os.Mkdir(tmp, 0o700)
		os.Chmod(tmp, 0o777|os.ModeSticky)
		a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: agentgBin, Dir: dir, DataDir: filepath.Join(tmp, "data"),
			Args: []string{"--approvals-webhook", "http://127.0.0.1:9/hook", "--approvals-webhook-secret-file", secret(t, dir, 0o640, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		a.Kill()
	})
}
