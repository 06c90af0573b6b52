// Command authclient is the client the MCP conformance suite runs for its
// auth/* scenarios when agentg is the OAuth client (scripts/conformance.sh
// auth, test/mcp_oauth_test.go). It is the official Go SDK client with
// no OAuth handler at all, sending through agentg as its HTTP proxy; the
// policy it writes gives agentg an oauth binding for the scenario's
// server. It performs what the SDK's own conformance client does for an
// auth scenario (connect, list tools, call test-tool), and when agentg
// answers that a person must connect the server, it plays the person:
// it runs `agentg oauth connect`, opens the printed authorization URL
// (the suite's authorization server redirects straight back to agentg's
// callback with a code), and tries the call again.
//
// Environment: AGENTG_BIN (the agentg binary; required), AGENTG_HARNESS_DIR
// (where agentg's policy, log and data go; default a temporary
// directory), AUTHCLIENT_AGENT_AUTHORIZATION (an Authorization header the
// client itself sends on every request, which agentg must drop), and the suite's MCP_CONFORMANCE_SCENARIO,
// MCP_CONFORMANCE_CONTEXT and MCP_CONFORMANCE_PROTOCOL_VERSION. The
// server URL is the last argument.
//
// Exit status: 0 when the scenario's calls succeeded, 1 when they failed
// (some scenarios expect that), 3 when agentg wrote a token or secret
// value anywhere (its event log or stderr).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentg/agentg/admin"
	"github.com/agentg/agentg/internal/testenv"
)

const binding = "conformance"

// maxConnects bounds the person's connects in one run: agentg itself
// bounds step-up; this only keeps a broken run from looping.
const maxConnects = 6

func main() {
	log.SetFlags(0)
	log.SetPrefix("authclient: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: authclient SERVER_URL")
	}
	serverURL := os.Args[len(os.Args)-1]
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	var cctx map[string]any
	if s := os.Getenv("MCP_CONFORMANCE_CONTEXT"); s != "" {
		if err := json.Unmarshal([]byte(s), &cctx); err != nil {
			log.Fatalf("MCP_CONFORMANCE_CONTEXT: %v", err)
		}
	}
	bin := os.Getenv("AGENTG_BIN")
	if bin == "" {
		log.Fatal("AGENTG_BIN is not set: it names the agentg binary to run")
	}
	dir := os.Getenv("AGENTG_HARNESS_DIR")
	if dir == "" {
		d, err := os.MkdirTemp("", "authclient-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	os.Exit(run(bin, dir, serverURL, scenario, cctx))
}

func run(bin, dir, serverURL, scenario string, cctx map[string]any) int {
	u, err := url.Parse(serverURL)
	if err != nil {
		log.Printf("server URL: %v", err)
		return 1
	}
	pol, env, secrets := policy(u, scenario, cctx)
	a, err := testenv.StartAgentg(testenv.AgentgConfig{Binary: bin, Dir: dir, Policy: pol, Env: append(os.Environ(), env...),
		Stderr: os.Stderr})
	if err != nil {
		log.Printf("starting agentg: %v", err)
		return 1
	}
	defer a.Stop(5 * time.Second)
	h := &harness{a: a, bin: bin}
	status := 0
	if err := h.scenario(serverURL); err != nil {
		log.Printf("scenario %s: %v", scenario, err)
		status = 1
	}
	a.Stop(5 * time.Second)
	if leaks := leaked(a, secrets); len(leaks) > 0 {
		log.Printf("agentg wrote secret values: %s", strings.Join(leaks, "; "))
		_ = os.WriteFile(filepath.Join(dir, "LEAKED"), []byte(strings.Join(leaks, "\n")+"\n"), 0o644)
		return 3
	}
	return status
}

// policy is agentg's policy for the scenario, the environment that
// carries its secrets, and the secret values to look for afterwards.
func policy(u *url.URL, scenario string, cctx map[string]any) (pol string, env, secrets []string) {
	str := func(k string) string { s, _ := cctx[k].(string); return s }
	var oauth, secs string
	switch {
	case scenario == "auth/client-credentials-jwt":
		oauth = fmt.Sprintf("{grant: client_credentials, client_id: %q, private_key: cc-key, token_auth: private_key_jwt}", str("client_id"))
		secs = "    cc-key: {env: AUTHCLIENT_PRIVATE_KEY}\n"
		// A secret holds no line break: the PEM on one line (agentg
		// reads the base64 DER between its markers).
		env = append(env, "AUTHCLIENT_PRIVATE_KEY="+strings.ReplaceAll(strings.TrimSpace(str("private_key_pem")), "\n", ""))
		secrets = append(secrets, pemBody(str("private_key_pem")), strings.ReplaceAll(strings.TrimSpace(str("private_key_pem")), "\n", ""))
	case scenario == "auth/client-credentials-basic":
		oauth = fmt.Sprintf("{grant: client_credentials, client_id: %q, client_secret: cc-secret}", str("client_id"))
		secs = "    cc-secret: {env: AUTHCLIENT_CLIENT_SECRET}\n"
		env = append(env, "AUTHCLIENT_CLIENT_SECRET="+str("client_secret"))
		secrets = append(secrets, str("client_secret"))
	case str("client_id") != "" && str("client_secret") != "":
		// A pre-registered client, as the SDK's conformance client
		// uses one whenever the scenario hands it one.
		oauth = fmt.Sprintf("{client_id: %q, client_secret: pre-secret}", str("client_id"))
		secs = "    pre-secret: {env: AUTHCLIENT_CLIENT_SECRET}\n"
		env = append(env, "AUTHCLIENT_CLIENT_SECRET="+str("client_secret"))
		secrets = append(secrets, str("client_secret"))
	default:
		// The SDK's conformance client's metadata document URL (the
		// suite checks it is the client_id used).
		oauth = "{client_metadata_url: https://conformance-test.local/client-metadata.json}"
	}
	pol = `default: deny
ips:
  - allow: 127.0.0.1/32
hosts:
  - allow: localhost
resolve:
  localhost: [127.0.0.1]
mcp:
  default: allow
  servers:
    - name: conformance
      url: localhost` + u.Path + `
credentials:
  secrets:
` + secs + `    unused: {env: AUTHCLIENT_UNUSED}
  bindings:
    - id: ` + binding + `
      host: localhost
      path: ` + u.Path + `
      insecure_http: true # the suite serves plain http on localhost
      oauth: ` + oauth + `
`
	return pol, env, secrets
}

func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	if len(lines) > 2 {
		return strings.TrimSpace(lines[1])
	}
	return p
}

type harness struct {
	a        *testenv.Agentg
	bin      string
	connects int
}

// scenario does what the SDK's conformance client does for an auth
// scenario, through agentg, connecting when agentg says so.
func (h *harness) scenario(serverURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	proxy := h.a.URL()
	var rt http.RoundTripper = &http.Transport{Proxy: http.ProxyURL(proxy)}
	if own := os.Getenv("AUTHCLIENT_AGENT_AUTHORIZATION"); own != "" {
		// The agent's own credential toward the server, which agentg
		// must drop, never pass beside its token (the suite's server
		// fails a request with a token it did not issue).
		rt = ownAuth{rt, own}
	}
	hc := &http.Client{Transport: rt}
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, nil)
	var opts *mcp.ClientSessionOptions
	if v := os.Getenv("MCP_CONFORMANCE_PROTOCOL_VERSION"); v != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: v}
	}
	var cs *mcp.ClientSession
	err := h.retry(ctx, func() error {
		var err error
		cs, err = client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: serverURL, HTTPClient: hc}, opts)
		return err
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cs.Close()
	if err := h.retry(ctx, func() error { _, err := cs.ListTools(ctx, nil); return err }); err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	if err := h.retry(ctx, func() error {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "test-tool", Arguments: map[string]any{}})
		return err
	}); err != nil {
		return fmt.Errorf("tools/call: %w", err)
	}
	return nil
}

// retry runs call, and while it fails because agentg says a person must
// connect the server, connects and runs it again. agentg says so in the
// call's error, and to a person in its admin API (agentg oauth list, the
// console): a client may hide the error (the SDK falls back from
// server/discover to initialize on any error), the person still sees it.
func (h *harness) retry(ctx context.Context, call func() error) error {
	for {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "agentg oauth connect") && !h.needsConnect(ctx) {
			return err
		}
		if h.connects >= maxConnects {
			return fmt.Errorf("still asked to connect after %d connects: %w", h.connects, err)
		}
		h.connects++
		log.Printf("agentg asks for a connect (%d): %v", h.connects, err)
		if cerr := h.connect(ctx); cerr != nil {
			return fmt.Errorf("%w (and connecting failed: %v)", err, cerr)
		}
	}
}

// needsConnect asks agentg's admin API whether the binding waits on a
// person.
func (h *harness) needsConnect(ctx context.Context) bool {
	tok, err := h.a.AdminToken()
	if err != nil {
		return false
	}
	c, err := admin.NewClient(h.a.AdminAddr, tok)
	if err != nil {
		return false
	}
	items, err := c.OAuthBindings(ctx)
	if err != nil {
		log.Printf("asking agentg about its oauth bindings: %v", err)
		return false
	}
	for _, b := range items {
		if b.Binding == binding && b.NeedsConnect != "" {
			log.Printf("agentg says %s needs a connect: %s", binding, b.NeedsConnect)
			return true
		}
	}
	return false
}

// connect plays the person: agentg oauth connect, then the browser.
func (h *harness) connect(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, h.bin, "oauth", "connect", binding, "--admin", h.a.AdminAddr,
		"--data-dir", h.a.DataDir, "--timeout", "30s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	var authURL string
	var printed []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		printed = append(printed, line)
		if strings.HasPrefix(line, "http://") || strings.HasPrefix(line, "https://") {
			authURL = line
			break
		}
	}
	if authURL == "" {
		io.Copy(io.Discard, out)
		werr := cmd.Wait()
		return fmt.Errorf("agentg oauth connect printed no URL (%v): %s %s", werr, strings.Join(printed, " | "), stderr.String())
	}
	go io.Copy(io.Discard, out)
	// The browser: follow the authorization server's redirect to agentg's
	// callback (loopback only).
	browser := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if h := req.URL.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("redirect off loopback to %s", req.URL.Host)
		}
		if len(via) > 5 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if resp, err := browser.Do(req); err != nil {
		log.Printf("browser: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("agentg oauth connect: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

type ownAuth struct {
	base  http.RoundTripper
	value string
}

func (o ownAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", o.value)
	return o.base.RoundTrip(r)
}

// tokenPattern matches the access tokens the suite's authorization
// servers issue.
var tokenPattern = regexp.MustCompile(`(test-token|cc-token)-[A-Za-z0-9-]*[0-9]{6,}`)

// leaked lists what of a token or a secret agentg wrote: its event log
// and its stderr.
func leaked(a *testenv.Agentg, secrets []string) []string {
	var out []string
	texts := map[string]string{"stderr": a.Stderr()}
	if b, err := os.ReadFile(a.LogFile); err == nil {
		texts[filepath.Base(a.LogFile)] = string(b)
	}
	for name, text := range texts {
		if m := tokenPattern.FindString(text); m != "" {
			out = append(out, name+" holds an access token")
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				out = append(out, name+" holds a secret of the policy")
			}
		}
	}
	return out
}
