package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/dissect/llm"
	"github.com/agentg/agentg/dissect/mcp/wire"
	"github.com/agentg/agentg/rules"
)

// What a model request may carry to the provider (issue 18). Once its
// model is allowed, and before a credential is attached:
//
//   - The leak guard looks at the whole body (the part guardCredentials
//     reads of other bodies is its first 64 KiB; a model request is read
//     whole anyway): a value agentg holds that no binding lets go to the
//     provider refuses the request, as the leak guard refuses any other
//     body, but in the provider's own error shape so the agent's SDK
//     surfaces it; the llm event names the secret, never its value.
//     Refusing, rather than masking, is what the leak guard does
//     everywhere: a request silently changed could still do harm, one
//     refused says why.
//   - The policy's redact rules of the arguments direction that cover the
//     agent (the rules a tools/call's arguments get, wire.Redact, the one
//     redaction engine) rewrite the conversation members of the request
//     (llm.RewriteContent): each match becomes [REDACTED:<id>] and the
//     request goes on, still the provider's request. The llm event lists
//     the rules that fired. A request that cannot be read (llm.unparsed
//     let it through) and that a redact rule matches as bytes cannot be
//     redacted, so it is refused, as is one not read at all (over the
//     bound, or encoded): what cannot be checked is not passed.

// ruleLLMRedact names the refusal of a model request a redact rule
// matches but that cannot be rewritten.
const ruleLLMRedact = "builtin:llm-redact"

// llmScrub applies the leak guard and the redactions to the model request
// c whose body was read (body); it reports whether it refused it (the
// refusal written, and its llm event logged).
func (s *Server) llmScrub(eng *rules.Engine, f *flow, w http.ResponseWriter, r *http.Request, c *llmCall, body []byte) (refused bool) {
	if s.leaks.Active() && len(body) > 0 {
		lc := &leakCheck{s: s, eng: eng, f: f, r: r}
		lc.scanBytes(place{what: placeBody}, body, creds.FormRaw|creds.FormPercent|creds.FormJSON)
		if len(lc.hits) > 0 {
			// decide records the refusal on the exchange's flow; the
			// model call's refusal is its llm event (as a models rule's
			// is), so the exchange keeps its own decision.
			was := f.decision
			if ref := lc.decide(); ref != nil {
				d := f.decision
				f.decision = was
				s.llmRefuse(w, f, c, http.StatusForbidden, d)
				return true
			}
		}
	}
	reds := llmRedactions(eng, f.agent)
	if len(reds) == 0 {
		return false
	}
	if c.unparsed != "" {
		enc := r.Header.Get("Content-Encoding")
		if body == nil || enc != "" && !strings.EqualFold(enc, "identity") {
			// Not read (over the bound) or read encoded: what a rule
			// would match is not in the bytes at hand.
			s.llmRefuse(w, f, c, http.StatusBadRequest, rules.Decision{Action: rules.Deny, Rule: ruleLLMRedact,
				Reason: "redact rules cover this agent and the model request could not be read (" + c.unparsed + "), so it cannot be redacted"})
			return true
		}
		for _, rd := range reds {
			if rd.Pattern.Match(body) {
				s.llmRefuse(w, f, c, http.StatusBadRequest, rules.Decision{Action: rules.Deny, Rule: ruleLLMRedact,
					Reason: "redact rule " + rd.ID + " matches a model request agentg could not read (" + c.unparsed + "), so it cannot be redacted"})
				return true
			}
		}
		return false
	}
	var fired []string
	out, changed, err := llm.RewriteContent(c.route.Dialect, body, func(v jsontext.Value) (jsontext.Value, error) {
		nv, ids, err := wire.Redact(v, reds)
		for _, id := range ids {
			if !contains(fired, id) {
				fired = append(fired, id)
			}
		}
		return nv, err
	})
	if err != nil {
		why := err.Error()
		var u *wire.Unredactable
		if errors.As(err, &u) {
			why = "redact rule " + u.Rule + " matches " + u.Field + ", which cannot be rewritten"
		}
		s.llmRefuse(w, f, c, http.StatusBadRequest, rules.Decision{Action: rules.Deny, Rule: ruleLLMRedact,
			Reason: "the model request cannot be redacted: " + why})
		return true
	}
	if !changed {
		return false
	}
	c.redactions = fired
	r.Body = readCloser{bytes.NewReader(out), r.Body}
	r.ContentLength = int64(len(out))
	if r.Header.Get("Content-Length") != "" {
		r.Header.Set("Content-Length", strconv.Itoa(len(out)))
	}
	return false
}

// llmRedactions are the redact rules a model request of agent's gets:
// those of the arguments direction that cover the agent (the request is
// tied to no one server's tool, so every such rule applies, as for the
// tool calls an llm event shows).
func llmRedactions(eng *rules.Engine, agent string) []wire.Redaction {
	var reds []wire.Redaction
	for _, r := range eng.MCP().MessageRedactions(agent, false) {
		reds = append(reds, wire.Redaction{ID: r.ID, Pattern: r.Pattern})
	}
	return reds
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
