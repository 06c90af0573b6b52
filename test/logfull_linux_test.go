package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

// Issue 14, item 19: with the log's file system full, events were dropped
// with nothing on stderr, no metric and /readyz still 200, and when space
// returned a partial line was glued to the next event. Here agentg runs in
// a mount namespace of its own (unshare) whose log directory is a 64 KiB
// tmpfs; the test reaches that file system through /proc/PID/root, fills
// it, drives requests, and gives the space back.
func TestEventLogFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs in a mount namespace of its own")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) (util-linux) to make a mount namespace")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()

	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	os.Mkdir(logDir, 0o700)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(loopbackOpen), 0o644)
	data := filepath.Join(dir, "data")
	listen, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminAddr, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// unshare execs sh, which execs agentg: one pid, in the namespace.
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"`, "sh", logDir,
		agentgBin, "serve", "--listen", listen, "--admin", adminAddr, "--dns", "off", "--config", policy,
		"--data-dir", data, "--log-file", filepath.Join(logDir, "agentg.log"), "--log-flush-interval", "20ms",
		"--reload-interval", "0")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := testenv.WaitListening(listen, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := testenv.WaitListening(adminAddr, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	fs := fmt.Sprintf("/proc/%d/root%s", cmd.Process.Pid, logDir) // the tmpfs, as agentg sees it
	logPath := filepath.Join(fs, "agentg.log")
	var st syscall.Statfs_t
	if err := syscall.Statfs(fs, &st); err != nil || st.Type != 0x01021994 { // TMPFS_MAGIC
		t.Fatalf("%s is not the tmpfs (statfs %v, type %#x)", fs, err, st.Type)
	}
	token, err := admin.ReadToken(data)
	if err != nil {
		t.Fatal(err)
	}
	adminGetStatus := func(path string) (int, string) { return adminGet(t, adminAddr, path, "Bearer "+token) }
	if code, body := adminGetStatus("/readyz"); code != 200 {
		t.Fatalf("/readyz before: %d %s", code, body)
	}

	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: listen})}, Timeout: 10 * time.Second}
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(up.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d: enforcement must go on while the log fails", path, resp.StatusCode)
		}
	}
	get("/before")
	waitLogged(t, logPath, "/before")

	// Fill the file system, a page per file.
	var fillers []string
	for i := 0; ; i++ {
		p := filepath.Join(fs, "filler"+strconv.Itoa(i))
		if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
			os.Remove(p)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
		fillers = append(fillers, p)
	}

	// Requests until agentg says the log fails; they are served all the
	// while.
	const warning = "cannot write the event log"
	for i := 0; !strings.Contains(stderr.String(), warning); i++ {
		if i > 3000 {
			t.Fatalf("3000 requests on a full disk and nothing on stderr:\n%s", stderr.String())
		}
		get("/full" + strconv.Itoa(i))
	}
	for i := 0; i < 100; i++ {
		get("/lost" + strconv.Itoa(i))
	}
	if code, body := adminGetStatus("/readyz"); code != 503 || !strings.Contains(body, "event log") {
		t.Errorf("/readyz while the log fails: %d %s, want 503 naming the event log", code, body)
	}
	var dropped float64
	waitFor(t, func() bool {
		_, metrics := adminGetStatus("/metrics")
		dropped = metricLine(metrics, `agentg_events_dropped_total{reason="no_space",sink="file"}`)
		return dropped >= 100
	}, "agentg_events_dropped_total to count the lost events")
	if n := strings.Count(stderr.String(), warning); n != 1 {
		t.Errorf("%d warnings on stderr within seconds, want 1 (rate-limited):\n%s", n, stderr.String())
	}

	// Space returns: a marker request's event arrives, after a line
	// saying what was lost, and the file holds only whole lines.
	for _, p := range fillers {
		os.Remove(p)
	}
	get("/marker")
	waitLogged(t, logPath, "/marker")
	waitFor(t, func() bool { code, _ := adminGetStatus("/readyz"); return code == 200 }, "/readyz to be ready again")
	if !strings.Contains(stderr.String(), "written again") {
		t.Errorf("stderr does not say the log is written again:\n%s", stderr.String())
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var lostSaid float64
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("not a whole JSON line in the log: %q", line)
			continue
		}
		if n, ok := m["lost_events"].(float64); ok {
			lostSaid += n
		}
	}
	if b[len(b)-1] != '\n' {
		t.Errorf("the log ends in a partial line")
	}
	if lostSaid < 100 {
		t.Errorf("the log says %v events were lost, want at least 100 (the metric says %v)", lostSaid, dropped)
	}
}

// waitLogged waits for a decision event of path in the log at logPath.
func waitLogged(t *testing.T, logPath, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lines, _ := testenv.ReadLog(logPath)
		for _, l := range lines {
			if l["message"] == "decision" && l["path"] == path {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no event for %s in %s", path, logPath)
}

// metricLine reads one series' value from the Prometheus text format.
func metricLine(text, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}
