package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/rules"
)

// The deployment examples (deploy/, the Dockerfile) cannot run here (no
// cluster, no Docker), so each is held to the binary it runs: YAML that
// parses, agentg's arguments that `agentg serve` accepts, the ports and
// probes they name equal to the addresses those arguments give, the
// files they pass mounted where they say, and the policies they ship
// loading.

const repoRoot = "../.."

// serveArgs parses agentg's serve arguments as `agentg serve` does.
func serveArgs(t *testing.T, where string, args []string) (listen, admin string, cfgFile, caCert, caKey, tokenFile string) {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: agentg's arguments %q do not start with serve", where, args)
	}
	cfg, _, err := parseServe(args[1:], io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("%s: agentg serve %q: %v", where, args[1:], err)
	}
	return cfg.Listen, cfg.Admin.Addr, cfg.PolicyFile, cfg.CA.Cert, cfg.CA.Key, cfg.Admin.TokenFile
}

func port(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: address %q: %v", where, addr, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, d)
	}
}

// dig walks maps and lists: dig(x, "spec", "template", "spec").
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, toString(x))
	}
	return out
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	return ""
}

func TestDeployKubernetes(t *testing.T) {
	file := filepath.Join(repoRoot, "deploy", "kubernetes", "agentg.yaml")
	docs := yamlDocs(t, file)
	configMaps := map[string]map[string]any{}
	services := []map[string]any{}
	var agentg map[string]any // the agentg Deployment's pod spec
	var labels map[string]any
	for _, d := range docs {
		name := toString(dig(d, "metadata", "name"))
		switch d["kind"] {
		case "ConfigMap":
			configMaps[name] = d
		case "Service":
			services = append(services, d)
		case "Deployment":
			if name == "agentg" {
				agentg = dig(d, "spec", "template", "spec").(map[string]any)
				labels = dig(d, "spec", "template", "metadata", "labels").(map[string]any)
			}
		}
	}
	if agentg == nil {
		t.Fatal("no agentg Deployment")
	}
	c := dig(agentg, "containers", 0).(map[string]any)
	listen, admin, policy, caCert, caKey, token := serveArgs(t, file, strs(c["args"]))
	ports := map[string]int{}
	for _, p := range c["ports"].([]any) {
		ports[toString(dig(p, "name"))] = dig(p, "containerPort").(int)
	}
	if ports["proxy"] != port(t, file, listen) || ports["admin"] != port(t, file, admin) {
		t.Errorf("containerPorts %v, want proxy %s and admin %s as the arguments say", ports, listen, admin)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		p := toString(dig(c, probe, "httpGet", "path"))
		if (p != "/healthz" && p != "/readyz") || toString(dig(c, probe, "httpGet", "port")) != "admin" {
			t.Errorf("%s: %v, want /healthz or /readyz on the admin port", probe, dig(c, probe))
		}
	}
	// Every file agentg is given is in a volume mounted there, and the
	// policy is the ConfigMap's, which loads.
	volumes := map[string]map[string]any{}
	for _, v := range agentg["volumes"].([]any) {
		volumes[toString(dig(v, "name"))] = v.(map[string]any)
	}
	mountOf := func(file string) map[string]any {
		for _, m := range c["volumeMounts"].([]any) {
			if path.Dir(file) == toString(dig(m, "mountPath")) {
				return volumes[toString(dig(m, "name"))]
			}
		}
		t.Errorf("%s is in no volume mount", file)
		return nil
	}
	if v := mountOf(caCert); v != nil && toString(dig(v, "secret", "secretName")) == "" {
		t.Errorf("the CA certificate is not from a Secret: %v", v)
	}
	if v := mountOf(caKey); v != nil && toString(dig(v, "secret", "secretName")) == "" {
		t.Errorf("the CA key is not from a Secret: %v", v)
	}
	if v := mountOf(token); v != nil && toString(dig(v, "secret", "secretName")) == "" {
		t.Errorf("the admin token is not from a Secret: %v", v)
	}
	if v := mountOf(policy); v != nil {
		cm := configMaps[toString(dig(v, "configMap", "name"))]
		text := toString(dig(cm, "data", path.Base(policy)))
		if text == "" {
			t.Errorf("no ConfigMap holds %s", policy)
		} else if _, err := rules.Parse(policy, []byte(text)); err != nil {
			t.Errorf("the ConfigMap's policy: %v", err)
		}
	}
	// Each Service selects the agentg pods and targets a named port.
	for _, s := range services {
		for k, v := range dig(s, "spec", "selector").(map[string]any) {
			if labels[k] != v {
				t.Errorf("Service %v selects %s=%v, which the agentg pods lack", dig(s, "metadata", "name"), k, v)
			}
		}
		for _, p := range dig(s, "spec", "ports").([]any) {
			if _, ok := ports[toString(dig(p, "targetPort"))]; !ok {
				t.Errorf("Service %v targets port %v, which the container does not name", dig(s, "metadata", "name"), dig(p, "targetPort"))
			}
		}
	}
}

func TestDeployCompose(t *testing.T) {
	file := filepath.Join(repoRoot, "deploy", "compose", "compose.yaml")
	doc := yamlDocs(t, file)[0]
	svc := dig(doc, "services", "agentg").(map[string]any)
	_, admin, policy, _, _, _ := serveArgs(t, file, strs(svc["command"]))
	test := strs(dig(svc, "healthcheck", "test"))
	if len(test) < 3 || test[1] != "/usr/local/bin/agentg" || test[2] != "healthcheck" {
		t.Fatalf("healthcheck %q: want agentg healthcheck", test)
	}
	hc := newFlagSet("healthcheck", "", io.Discard)
	hcAdmin := hc.String("admin", "", "")
	hc.Bool("ready", false, "")
	if err := hc.Parse(test[3:]); err != nil || port(t, file, *hcAdmin) != port(t, file, admin) {
		t.Errorf("healthcheck asks %q (%v), agentg's admin API is %s", *hcAdmin, err, admin)
	}
	published := false
	for _, p := range strs(svc["ports"]) {
		published = published || strings.HasSuffix(p, ":"+strconv.Itoa(port(t, file, admin)))
	}
	if !published {
		t.Errorf("ports %q do not publish the admin port of %s", svc["ports"], admin)
	}
	// The policy is mounted from a file beside the compose file, which
	// loads.
	for _, v := range strs(svc["volumes"]) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == policy {
			src := filepath.Join(filepath.Dir(file), parts[0])
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rules.Parse(src, b); err != nil {
				t.Errorf("%s: %v", src, err)
			}
			return
		}
	}
	t.Errorf("no volume mounts the policy %s", policy)
}

func TestDeploySystemd(t *testing.T) {
	file := filepath.Join(repoRoot, "deploy", "systemd", "agentg.service")
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", file, line)
		}
		keys[k] = v
	}
	exec := strings.Fields(keys["ExecStart"])
	if len(exec) < 2 || exec[0] != "/usr/local/bin/agentg" {
		t.Fatalf("ExecStart %q", keys["ExecStart"])
	}
	serveArgs(t, file, exec[1:])
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "StateDirectoryMode": "0700", "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes"} {
		if got, ok := keys[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	// The data directory is the one systemd makes for the service.
	if !slices.Contains(exec, "/var/lib/"+keys["StateDirectory"]) {
		t.Errorf("ExecStart's --data-dir is not /var/lib/%s (StateDirectory)", keys["StateDirectory"])
	}
}

func TestDeployDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var cmd, health []string
	var exposed []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "CMD ")), &cmd); err != nil {
				t.Fatalf("CMD %q: %v", line, err)
			}
		case strings.HasPrefix(line, "HEALTHCHECK "):
			i := strings.Index(line, "CMD ")
			if err := json.Unmarshal([]byte(line[i+4:]), &health); err != nil {
				t.Fatalf("HEALTHCHECK %q: %v", line, err)
			}
		case strings.HasPrefix(line, "EXPOSE "):
			exposed = strings.Fields(strings.TrimPrefix(line, "EXPOSE "))
		}
	}
	listen, _, _, _, _, _ := serveArgs(t, "Dockerfile", cmd)
	if !slices.Contains(exposed, strconv.Itoa(port(t, "Dockerfile", listen))) {
		t.Errorf("EXPOSE %q lacks the proxy's port of %s", exposed, listen)
	}
	if len(health) < 2 || health[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK %q: want agentg healthcheck", health)
	}
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "**/node_modules"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}
