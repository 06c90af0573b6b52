package rules

import (
	"strings"
	"testing"
)

// FuzzParsePolicy: any bytes either load, with errors naming the file,
// or are refused; never a panic. A policy that loads answers the
// explanation questions without panicking either.
func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		"default: allow\n",
		"hosts:\n  - allow: a.test\n    ports: [443]\n",
		"ips:\n  - deny: 10.0.0.0/8\nresolve:\n  a.test: 10.0.0.1\n",
		"http:\n  - deny: \"POST a.test/**\"\n    id: x\nintercept: all\n",
		"mcp:\n  default: deny\n  servers:\n    - name: s\n      url: a.test/mcp\n  tools:\n    - allow: s.*\n",
		"dns:\n  limits:\n    refuse_types: [ANY]\n",
		"quotas:\n  - hosts: a.test\n    requests: 10/m\n",
		"mode: report\nhosts:\n  - deny: b.test\n",
		"hosts:\n  hosts: x\n",
		"lm: {}\n",
		"gateway:\n  tokens:\n    - {agent: a, sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae}\n  jwt:\n    issuer: i\n    audience: a\n    jwks_url: https://i.test/k\n    agents: {s: a}\n",
		"mcp:\n  servers:\n    - {name: s, url: a.test/mcp}\ncredentials:\n  secrets:\n    k: {kms: \"softkms:path=/nonexistent/k.pem\"}\n    t: {env: T}\n  bindings:\n    - {server: s, secret: t, header: {name: X, value: \"{{secret}}\"}}\n    - {host: a.test, client_cert: {cert: /nonexistent/c.pem, key: k}}\n",
		"llm:\n  hosts: [{host: a.test, path: /v1/**, dialects: [openai-chat], provider: p}]\n  unparsed: deny\n  models:\n    - {deny: \"gpt-*\", provider: p, agents: [x], id: m}\n  prices:\n    - {model: \"*mini*\", input: 1, output: 2}\n",
		"mcp:\n  unrequested: approve\n  link_window: 5m\n  servers:\n    - {name: s, url: a.test/mcp}\nllm:\n  tool_names:\n    a: s.b\n    \"x_*\": s.*\n",
		"hosts:\n  - allow: s.test\n    agents: [agentg]\ncredentials:\n  secrets:\n    s: {env: X}\n  bindings:\n    - host: a.test\n      token_exchange: {token_url: \"https://s.test/t\", client_id: c, client_secret: s, scopes: [a], max_ttl: 1m}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		h := host(t, "a.test", 443)
		e.Explain(Request{Host: h, Method: "POST", Path: "/x"})
		e.MCP().ExplainTool(ToolCall{Server: "s", Tool: "t"})
		e.DNS().Explain(DNSQuery{Name: "a.test.", Type: 1})
		e.LLM().Host(h, "/v1/chat/completions")
		e.LLM().Model(ModelCall{Agent: "x", Provider: "p", Model: "gpt-4o-mini"})
		e.LLM().Price("p", "gpt-4o-mini")
		e.Warnings()
	})
}
