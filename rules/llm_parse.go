package rules

import (
	"fmt"
	"math"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/agentg/agentg/dissect/llm"
)

// Parsing the llm section (llm.go has its model and decisions): every
// error names file:line.

type llmHostSpec struct {
	line     int
	hosts    []pattern
	glob     *glob
	dialects []llm.Dialect
	provider string
}

type modelSpec struct {
	line     int
	deny     bool
	provider string
	models   []modelGlob
	opts     ruleOpts
}

type llmSpec struct {
	hosts        []llmHostSpec
	defaultHosts *bool
	unparsed     Unparsed
	unparsedLine int
	dfltDeny     bool
	dfltLine     int
	models       []modelSpec
	prices       []priceEntry
	toolNames    []toolNameSpec // llm_names.go
}

func parseLLM(p *parser, _, v *yaml.Node, pol *policy) error {
	spec := &llmSpec{}
	err := p.eachKey(v, func(k, v *yaml.Node) error {
		switch k.Value {
		case "hosts":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "llm hosts must be a list of {host: HOST, path: GLOB, dialects: [..], provider: NAME}")
			}
			for _, it := range v.Content {
				h, err := p.llmHost(it)
				if err != nil {
					return err
				}
				spec.hosts = append(spec.hosts, h)
			}
		case "default_hosts":
			b, err := p.boolean(v)
			if err != nil {
				return err
			}
			spec.defaultHosts = &b
		case "unparsed":
			s, err := p.oneOf(v, "deny", "report", "allow")
			if err != nil {
				return err
			}
			spec.unparsedLine = k.Line
			spec.unparsed = map[string]Unparsed{"deny": UnparsedDeny, "report": UnparsedReport, "allow": UnparsedAllow}[s]
		case "default":
			s, err := p.oneOf(v, "allow", "deny")
			if err != nil {
				return err
			}
			spec.dfltDeny, spec.dfltLine = s == "deny", k.Line
		case "models":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "llm models must be a list of rules")
			}
			for _, it := range v.Content {
				m, err := p.modelRule(it)
				if err != nil {
					return err
				}
				spec.models = append(spec.models, m)
			}
		case "prices":
			if v.Kind != yaml.SequenceNode {
				return p.errf(v, "llm prices must be a list of {model: GLOB, input: N, output: N}")
			}
			for _, it := range v.Content {
				pe, err := p.priceEntry(it)
				if err != nil {
					return err
				}
				spec.prices = append(spec.prices, pe)
			}
		case "tool_names":
			var err error
			spec.toolNames, err = p.parseToolNames(v)
			return err
		default:
			if ok, err := p.llmGuardKey(k, v, pol); ok {
				return err
			}
			return p.errf(k, "unknown llm key %q (want hosts, default_hosts, unparsed, default, models, prices, tool_use, quotas or tool_names)", k.Value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	pol.specs.set("llm", spec)
	return nil
}

func (p *parser) llmHost(it *yaml.Node) (llmHostSpec, error) {
	h := llmHostSpec{line: it.Line}
	err := p.eachKey(it, func(k, v *yaml.Node) error {
		switch k.Value {
		case "host", "hosts":
			var err error
			h.hosts, err = p.namePatterns(v, "llm hosts (name the host, and map it under resolve: if it has no DNS name)")
			return err
		case "path":
			var err error
			h.glob, err = p.pathGlob(v)
			return err
		case "dialects", "dialect":
			its, err := p.items(v)
			if err != nil {
				return err
			}
			for _, n := range its {
				d, ok := llm.ParseDialect(n.Value)
				if !ok {
					return p.errf(n, "unknown dialect %q (want openai-chat, openai-responses, anthropic-messages or gemini)", n.Value)
				}
				h.dialects = append(h.dialects, d)
			}
		case "provider":
			s, err := p.scalar(v)
			if err != nil {
				return err
			}
			if !validName(s) {
				return p.errf(v, "bad provider name %q (printable, no spaces, at most 64 bytes)", s)
			}
			h.provider = s
		default:
			return p.errf(k, "unknown llm hosts key %q (want host, path, dialects, provider)", k.Value)
		}
		return nil
	})
	if err == nil && len(h.hosts) == 0 {
		err = p.errf(it, "an llm hosts entry needs a host")
	}
	return h, err
}

func (p *parser) modelRule(it *yaml.Node) (modelSpec, error) {
	m := modelSpec{line: it.Line}
	deny, val, o, err := p.ruleBody(it, func(k, v *yaml.Node) (bool, error) {
		if k.Value != "provider" {
			return false, nil
		}
		s, err := p.scalar(v)
		if err == nil && !validName(s) {
			err = p.errf(v, "bad provider name %q", s)
		}
		m.provider = s
		return true, err
	})
	if err != nil {
		return m, err
	}
	if len(o.ports) > 0 {
		return m, p.errf(it, "ports do not apply to llm models rules")
	}
	m.deny, m.opts = deny, o
	its, err := p.items(val)
	if err != nil {
		return m, err
	}
	for _, n := range its {
		g, err := compileModelGlob(n.Value)
		if err != nil {
			return m, p.errf(n, "%v", err)
		}
		m.models = append(m.models, g)
	}
	return m, nil
}

func (p *parser) priceEntry(it *yaml.Node) (priceEntry, error) {
	var pe priceEntry
	var model *yaml.Node
	var haveIn, haveOut, haveCached, haveWrite bool
	num := func(v *yaml.Node) (float64, error) {
		s, err := p.scalar(v)
		if err != nil {
			return 0, err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
			return 0, p.errf(v, "bad price %q (USD per million tokens, a number from 0 to 1000000)", s)
		}
		return f, nil
	}
	err := p.eachKey(it, func(k, v *yaml.Node) (err error) {
		switch k.Value {
		case "model":
			model = v
			var s string
			if s, err = p.scalar(v); err == nil {
				if pe.model, err = compileModelGlob(s); err != nil {
					err = p.errf(v, "%v", err)
				}
			}
		case "provider":
			if pe.provider, err = p.scalar(v); err == nil && !validName(pe.provider) {
				err = p.errf(v, "bad provider name %q", pe.provider)
			}
		case "input":
			pe.price.Input, err = num(v)
			haveIn = true
		case "cached_input":
			pe.price.CachedInput, err = num(v)
			haveCached = true
		case "cache_write":
			pe.price.CacheWrite, err = num(v)
			haveWrite = true
		case "output":
			pe.price.Output, err = num(v)
			haveOut = true
		default:
			err = p.errf(k, "unknown llm prices key %q (want model, provider, input, cached_input, cache_write, output)", k.Value)
		}
		return err
	})
	if err != nil {
		return pe, err
	}
	if model == nil || !haveIn || !haveOut {
		return pe, p.errf(it, "a price needs a model, an input and an output price")
	}
	if !haveCached {
		pe.price.CachedInput = pe.price.Input
	}
	if !haveWrite {
		pe.price.CacheWrite = pe.price.Input
	}
	pe.price.Source = fmt.Sprintf("%s:%d", p.file, it.Line)
	return pe, nil
}
