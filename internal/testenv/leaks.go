package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/rules"
)

// The leak check (issue 16: "after every test, grep everything agentg
// wrote for every secret value used: zero hits"). A test declares the
// secret values it uses (Secrets), or has them found for it: starting
// agentg with AgentgConfig.T registers the values of the policy's
// insecure_inline and file secrets and the values its Env gives the
// policy's env secrets. When the test ends, everything each agentg it
// started wrote (its event log, its stdout, its whole stderr, the files
// of its data directory) and
// everything the test read from agentg through this package (admin API
// answers with Agentg.AdminGet, the events WaitEvent streamed, the output
// of RunAgentg, such as agentg check's) is searched for each value; a hit
// fails the test naming the value's number and where, never the value.
//
// The checks are found by test (the one piece of shared state here
// besides the binary's build), so that a helper deep in a test registers
// a value or an output without threading a handle; each is removed when
// its test ends.

// TB is what the leak check needs of a test; *testing.T and *testing.B
// have it. (This package does not import testing: the load harness, a
// command, uses it too.)
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// minSecretLen is the shortest value the check accepts: a shorter one
// would be found by chance in any log.
const minSecretLen = 6

// LeakCheck is one test's values and what to search for them.
type LeakCheck struct {
	t      TB
	mu     sync.Mutex
	values []string
	texts  []recorded // what the test read from agentg
	procs  []*Agentg  // whose log, stdout and stderr are searched
}

type recorded struct {
	what string
	b    []byte
}

var leakChecks sync.Map // TB -> *LeakCheck

// Leaks returns t's leak check, making it (and its cleanup) on first use.
func Leaks(t TB) *LeakCheck {
	if lc, ok := leakChecks.Load(t); ok {
		return lc.(*LeakCheck)
	}
	lc := &LeakCheck{t: t}
	if prev, loaded := leakChecks.LoadOrStore(t, lc); loaded {
		return prev.(*LeakCheck)
	}
	t.Cleanup(func() {
		leakChecks.Delete(t)
		lc.run()
	})
	return lc
}

// Secrets declares secret values t uses: none may appear in anything
// agentg wrote or answered by the time t ends.
func Secrets(t TB, values ...string) *LeakCheck {
	t.Helper()
	lc := Leaks(t)
	lc.Add(values...)
	return lc
}

// Add declares more values. A value shorter than 6 bytes is refused (an
// error of the test): it would be found by chance.
func (lc *LeakCheck) Add(values ...string) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for _, v := range values {
		if len(v) < minSecretLen {
			lc.t.Errorf("leak check: a declared secret value is shorter than %d bytes: it cannot be searched for reliably", minSecretLen)
			continue
		}
		if !contains(lc.values, v) {
			lc.values = append(lc.values, v)
		}
	}
}

// Values is how many values are declared.
func (lc *LeakCheck) Values() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return len(lc.values)
}

// Record adds something the test read from agentg to what is searched.
func (lc *LeakCheck) Record(what string, b []byte) {
	if lc == nil {
		return
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.texts = append(lc.texts, recorded{what, bytes.Clone(b)})
}

func (lc *LeakCheck) watch(a *Agentg) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.procs = append(lc.procs, a)
}

// run searches, at the end of the test. An agentg still running is
// stopped first (SIGTERM: it flushes its log), so that what it wrote is
// all there.
func (lc *LeakCheck) run() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	texts := lc.texts
	for _, a := range lc.procs {
		select {
		case <-a.exited:
		default:
			a.Stop(5 * time.Second)
		}
		log, err := os.ReadFile(a.LogFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			lc.t.Errorf("leak check: read %s: %v", a.LogFile, err)
		}
		texts = append(texts, lc.dataFiles(a.DataDir, a.PolicyFile)...)
		texts = append(texts, recorded{"agentg's log " + a.LogFile, log},
			recorded{"agentg's stdout", []byte(a.stdout.String())},
			recorded{"agentg's stderr", []byte(a.stderrAll.String())})
		if a.stderrAll.dropped() {
			lc.t.Errorf("leak check: agentg wrote more than %d bytes to stderr; only the last were searched", a.stderrAll.max)
		}
	}
	for i, v := range lc.values {
		for _, r := range texts {
			if n := bytes.Count(r.b, []byte(v)); n > 0 {
				lc.t.Errorf("leak check: secret value #%d (of %d declared) appears %d times in %s", i+1, len(lc.values), n, r.what)
			}
		}
	}
}

// maxDataFile bounds a data directory file the check reads.
const maxDataFile = 64 << 20

// dataFiles is every file agentg keeps in its data directory (state, the
// admin token, tokens it must hold encrypted), to search: a value there
// in clear text is a leak at rest.
// The policy, should a test keep it there, is the test's, not agentg's.
func (lc *LeakCheck) dataFiles(dir, policy string) []recorded {
	var out []recorded
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || p == policy {
			return nil // gone, not a file, or the test's own
		}
		if fi, err := d.Info(); err != nil || fi.Size() > maxDataFile {
			lc.t.Errorf("leak check: %s is too large to search", p)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			lc.t.Errorf("leak check: read %s: %v", p, err)
			return nil
		}
		out = append(out, recorded{"agentg's data file " + p, b})
		return nil
	})
	return out
}

// registerPolicy declares the values of the policy's secrets that a test
// gives agentg: insecure_inline and file values (read here as agentg
// would), and the values env gives its env secrets. A policy that does
// not load declares nothing (agentg will refuse it too). Commands are not
// run.
func (lc *LeakCheck) registerPolicy(policyFile string, env []string) {
	eng, err := rules.Load(policyFile)
	if err != nil {
		return
	}
	store := eng.Credentials().Store()
	if env == nil {
		env = os.Environ()
	}
	for _, name := range store.Names() {
		src, _ := store.Source(name)
		switch src.Kind {
		case creds.KindInline, creds.KindFile:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s, err := store.Get(ctx, name)
			cancel()
			if err == nil {
				lc.Add(s.Reveal())
			}
		case creds.KindEnv:
			for _, kv := range env {
				if k, v, ok := strings.Cut(kv, "="); ok && k == src.Env && v != "" {
					lc.Add(v)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// AdminGet asks agentg's admin API for path (GET, with the admin token)
// and returns the status and body; the body is recorded for the leak
// check of the test the Agentg was started for.
func (a *Agentg) AdminGet(path string) (int, []byte, error) {
	if a.AdminAddr == "" {
		return 0, nil, errors.New("admin get: this agentg serves no admin API")
	}
	tok, err := a.AdminToken()
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+a.AdminAddr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin get %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	a.leaks.Record("the admin API's answer to GET "+path, b)
	if err != nil {
		return resp.StatusCode, b, fmt.Errorf("admin get %s: %w", path, err)
	}
	return resp.StatusCode, b, nil
}

// RunAgentg runs the agentg binary with args (and stdin, when not nil)
// and returns its exit code and its combined output, which is recorded
// for t's leak check when t is not nil. err is for a binary that could
// not be run at all.
func RunAgentg(t TB, binary string, stdin io.Reader, args ...string) (int, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if t != nil {
		Leaks(t).Record("the output of agentg "+strings.Join(args, " "), out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out), nil
	}
	if err != nil {
		return -1, string(out), err
	}
	return 0, string(out), nil
}
