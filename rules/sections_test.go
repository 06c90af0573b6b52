package rules

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The table lists the keys in the policy language's order: errors print
// this list, and every key parses through its entry.
func TestSectionTable(t *testing.T) {
	const want = "default, mode, ports, agents, free_agent_names, hosts, ips, lists, resolve, intercept, passthrough, http, mcp, dns, quotas, credentials, gateway, llm"
	if got := policyLanguage.keys(""); got != want {
		t.Errorf("sectionKeys = %q, want %q", got, want)
	}
	if got, w := policyLanguage.keys("or"), "default, mode, ports, agents, free_agent_names, hosts, ips, lists, resolve, intercept, passthrough, http, mcp, dns, quotas, credentials, gateway or llm"; got != w {
		t.Errorf("policyLanguage.keys(or) = %q, want %q", got, w)
	}
	for _, s := range policyLanguage.sections {
		if s.parse == nil {
			t.Errorf("section %s has no parse", s.key)
		}
		if got, ok := policyLanguage.section(s.key); !ok || got.key != s.key {
			t.Errorf("policyLanguage.section(%s) = %v, %v", s.key, got, ok)
		}
	}
	if _, ok := policyLanguage.section("telemetry"); ok {
		t.Error("sectionFor found an unregistered key")
	}
	// Steps run by phase, then in order: rule sources are numbered, and
	// duplicate ids reported, in this order.
	steps := policyLanguage.steps
	for i := 1; i < len(steps); i++ {
		a, b := steps[i-1], steps[i]
		if a.phase > b.phase || a.phase == b.phase && a.at > b.at {
			t.Errorf("step %d (phase %d at %d) after step %d (phase %d at %d)", i, b.phase, b.at, i-1, a.phase, a.at)
		}
	}
}

// Two files claiming one key is a programming error, found at start-up.
func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering hosts twice did not panic")
		}
	}()
	register(section{key: "hosts", rank: rankHosts})
}

// A new section is one registration: its parse, its compile step and its
// view, with nothing else in the package told about it. This builds the
// package's language plus a traces: section, as a new file would add it.
func TestSectionPlugsIn(t *testing.T) {
	type tracesSpec struct{ model string }
	type tracesView struct {
		model string
		src   string
	}
	var l language
	for _, s := range policyLanguage.sections {
		l.register(s)
	}
	l.register(section{key: "traces", rank: rankLLM + 10,
		parse: func(p *parser, _, v *yaml.Node, pol *policy) error {
			var spec tracesSpec
			err := p.eachKey(v, func(k, v *yaml.Node) (err error) {
				if k.Value != "model" {
					return p.errf(k, "unknown traces key %q", k.Value)
				}
				spec.model, err = p.scalar(v)
				return err
			})
			pol.specs.set("traces", spec)
			return err
		},
		steps: []step{{phase: phaseRules, at: 70, run: func(c *compiler) error {
			spec, _ := c.pol.specs.get("traces").(tracesSpec)
			c.e.views.set("traces", &tracesView{model: spec.model, src: c.pol.file})
			return nil
		}}}})

	pol, err := l.parse("p.yaml", []byte("hosts:\n  - allow: a.test\ntraces:\n  model: small\n"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := compile(pol, ".")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := e.views.get("traces").(*tracesView); !ok || v.model != "small" || v.src != "p.yaml" {
		t.Errorf("traces view = %#v", e.views.get("traces"))
	}
	if d := e.Host("", host(t, "a.test", 443)); d.Action != Allow || d.Rule != "p.yaml:2" {
		t.Errorf("hosts decided %v %q beside the new section", d.Action, d.Rule)
	}
	// Its errors name file and line, and the key lists grow with it.
	if _, err := l.parse("p.yaml", []byte("traces:\n  modle: x\n")); err == nil || !strings.Contains(err.Error(), `p.yaml:2: unknown traces key "modle"`) {
		t.Errorf("parse error = %v", err)
	}
	if _, err := l.parse("p.yaml", []byte("lm: {}\n")); err == nil || !strings.Contains(err.Error(), "gateway, llm or traces)") {
		t.Errorf("unknown key error = %v", err)
	}
	// The package's own language is untouched.
	if _, ok := policyLanguage.section("traces"); ok {
		t.Error("the test's section leaked into the package's language")
	}
}
