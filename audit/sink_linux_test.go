package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A full disk, for real: the test binary runs itself again in a mount
// namespace of its own (unshare), where it mounts a small tmpfs, fills
// it, and logs into it. Nothing of it is visible outside that process.
const fullDiskEnv = "AGENTG_TEST_FULL_DISK"

func TestSinkFullDisk(t *testing.T) {
	if dir := os.Getenv(fullDiskEnv); dir != "" {
		fullDisk(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs in a mount namespace of its own to fill it")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) (util-linux) to make a mount namespace")
	}
	for _, flush := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run(fmt.Sprintf("flush=%s", flush), func(t *testing.T) {
			cmd := exec.Command(unshare, "--mount", "--propagation", "private", os.Args[0],
				"-test.run=^TestSinkFullDisk$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), fullDiskEnv+"="+t.TempDir(), "AGENTG_TEST_FLUSH="+flush.String())
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestSinkFullDisk") {
				t.Fatalf("in the mount namespace: %v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// fullDisk runs in the namespace.
func fullDisk(t *testing.T, dir string) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	flush, _ := time.ParseDuration(os.Getenv("AGENTG_TEST_FLUSH"))
	path := filepath.Join(dir, "agentg.log")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stderr syncBuf
	l := NewWithOptions(f, Options{FlushInterval: flush, Stderr: &stderr})
	defer l.Close()
	logged := 0
	ev := func(host string) {
		logged++
		l.Log(&Event{ID: fmt.Sprint(logged), Time: time.Now(), Kind: "http", Host: host, Decision: "allow", Rule: "r"})
	}
	ev("before.test")
	l.Flush()

	// Fill the file system, a page per file, so that one page at a time
	// can be given back.
	var fillers []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprint("filler", i))
		if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
			os.Remove(p)
			break
		}
		fillers = append(fillers, p)
	}

	// Events until the log says it fails, and more after.
	for i := 0; l.SinkError() == nil; i++ {
		if i > 10000 {
			t.Fatal("the log never failed on a full file system")
		}
		ev(fmt.Sprintf("full%d.test", i))
		if i%20 == 0 {
			l.Flush()
		}
	}
	if !errors.Is(l.SinkError(), syscall.ENOSPC) {
		t.Errorf("SinkError %v, want ENOSPC", l.SinkError())
	}
	for i := 0; i < 200; i++ {
		ev(fmt.Sprintf("lost%d.test", i))
	}
	l.Flush()
	warned := stderr.String()
	if strings.Count(warned, "cannot write the event log") != 1 || !strings.Contains(warned, "no space") {
		t.Errorf("stderr should say it once:\n%s", warned)
	}
	var lost uint64
	for _, d := range l.DroppedBySink() {
		if d.Reason == ReasonNoSpace {
			lost = d.Events
		} else if d.Events != 0 {
			t.Errorf("dropped %v", d)
		}
	}
	if lost < 200 {
		t.Errorf("%d events counted as lost, want at least 200", lost)
	}
	checkWhole(t, path) // no partial line while it fails

	// A page comes free and goes again: a write longer than it fills it
	// and fails in the middle of a line.
	os.Remove(fillers[0])
	fillers = fillers[1:]
	for i := 0; i < 60; i++ {
		ev(fmt.Sprintf("page%d.test", i))
	}
	l.Flush()
	if l.SinkError() == nil {
		t.Fatal("a page took more than 60 events")
	}
	checkWhole(t, path)
	for _, d := range l.DroppedBySink() {
		if d.Reason == ReasonNoSpace {
			lost = d.Events
		}
	}

	// Space returns: the next write says what was lost, then the events
	// come again.
	for _, p := range fillers {
		os.Remove(p)
	}
	ev("after.test")
	l.Flush()
	if err := l.SinkError(); err != nil {
		t.Errorf("SinkError after space returned: %v", err)
	}
	if !strings.Contains(stderr.String(), "written again") {
		t.Errorf("stderr does not say the log recovered:\n%s", stderr.String())
	}
	lines := checkWhole(t, path)
	var inFile, lostLine uint64
	for _, m := range lines {
		if m["message"] == "decision" {
			inFile++
		}
		if m["message"] == "events lost: the event log could not be written" {
			lostLine += uint64(m["lost_events"].(float64))
		}
	}
	if inFile+lost != uint64(logged) {
		t.Errorf("%d events in the file + %d counted lost != %d logged", inFile, lost, logged)
	}
	if lostLine != lost {
		t.Errorf("the lost line says %d, the count %d", lostLine, lost)
	}
	if last := lines[len(lines)-1]; last["host"] != "after.test" {
		t.Errorf("last line %v, want the event after recovery", last)
	}
}

// checkWhole checks that the file holds only whole JSON lines.
func checkWhole(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the log ends in a partial line: %q", b[max(0, len(b)-80):])
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("not a whole JSON line: %q", line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// The recovery needs no new event: the retry writes the lost line.
func TestSinkRetryRecovers(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	var stderr syncBuf
	l := NewWithOptions(full, Options{Stderr: &stderr})
	defer l.Close()
	for i := 0; i < 3; i++ {
		l.Log(&Event{Kind: "http", Decision: "deny"})
	}
	if !errors.Is(l.SinkError(), syscall.ENOSPC) {
		t.Fatalf("SinkError %v, want ENOSPC from /dev/full", l.SinkError())
	}
	if d := l.DroppedBySink(); d[0].Reason != ReasonNoSpace || d[0].Events != 3 || d[0].Sink != "file" {
		t.Errorf("dropped %v, want 3 no_space", d)
	}
	if n := strings.Count(stderr.String(), "agentg:"); n != 1 {
		t.Errorf("%d warnings for 3 lost events, want 1:\n%s", n, stderr.String())
	}
	// Point the sink at a writable file: the retry succeeds on its own.
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l.sink.mu.Lock()
	l.sink.w, l.sink.f = f, f
	l.sink.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for l.SinkError() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the retry did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := checkWhole(t, f.Name())
	if len(lines) != 1 || lines[0]["lost_events"] != float64(3) {
		t.Errorf("after recovery: %v, want one line saying 3 events were lost", lines)
	}
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
