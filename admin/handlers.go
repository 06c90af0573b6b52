package admin

import (
	"errors"
	"log"
	"net/http"
	"slices"
	"strings"

	"github.com/agentg/agentg/rules"
	"github.com/agentg/agentg/state"
)

// The JSON endpoints: policy reload, the rules with their hit counts, and
// the MCP inventory and pins.

// ReloadResult is the answer of POST /v1/policy/reload.
type ReloadResult struct {
	Reloaded bool `json:"reloaded"`
}

func (s *Server) serveReload(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reload == nil {
		writeError(w, http.StatusConflict, "no_policy_file", "agentg runs its embedded default policy: there is no file to reload (start it with --config FILE)")
		return
	}
	if err := s.cfg.Reload(); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "reload_failed", "the previous policy stays in force: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ReloadResult{Reloaded: true})
}

// RuleHits is one rule of the policy in force with its hit count: how
// many events named it (its list, for a list entry) since agentg started.
type RuleHits struct {
	rules.RuleInfo
	Hits uint64 `json:"hits"`
}

// Hits is a rule id that fired but is not a rule of the policy in force:
// a built-in (builtin:self, mcp:pin-new, ...), or a rule a reload removed.
type Hits struct {
	ID   string `json:"id"`
	Hits uint64 `json:"hits"`
}

// RulesList is the answer of GET /v1/rules.
type RulesList struct {
	Items []RuleHits `json:"items"`
	Other []Hits     `json:"other"`
}

func (s *Server) serveRules(w http.ResponseWriter, r *http.Request) {
	hits := s.metrics.hitCounts()
	out := RulesList{Items: []RuleHits{}, Other: []Hits{}}
	for _, ri := range s.cfg.Policy.Engine().Rules() {
		out.Items = append(out.Items, RuleHits{RuleInfo: ri, Hits: hits[ri.ID]})
		delete(hits, ri.ID)
	}
	for id, n := range hits {
		out.Other = append(out.Other, Hits{ID: id, Hits: n})
	}
	slices.SortFunc(out.Other, func(a, b Hits) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) mcpState(w http.ResponseWriter) bool {
	if s.cfg.MCP == nil {
		writeError(w, http.StatusServiceUnavailable, "no_mcp_state", "this agentg keeps no MCP state")
		return false
	}
	return true
}

func (s *Server) serveInventory(w http.ResponseWriter, r *http.Request) {
	if s.mcpState(w) {
		inv := s.cfg.MCP.Snapshot()
		if inv.Servers == nil {
			inv.Servers = []state.InventoryServer{}
		}
		writeJSON(w, http.StatusOK, inv)
	}
}

func (s *Server) servePins(w http.ResponseWriter, r *http.Request) {
	if s.mcpState(w) {
		pins := s.cfg.MCP.Pins()
		if pins == nil {
			pins = []state.Pin{}
		}
		writeJSON(w, http.StatusOK, List[state.Pin]{Items: pins})
	}
}

// AcceptPin is the body of POST /v1/mcp/pins/accept: the tool whose
// changed definition is accepted.
type AcceptPin struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
}

func (s *Server) serveAcceptPin(w http.ResponseWriter, r *http.Request) {
	if !s.mcpState(w) {
		return
	}
	var req AcceptPin
	if err := readJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error()+` (want {"server": "...", "tool": "..."})`)
		return
	}
	if req.Server == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "server is required")
		return
	}
	p, err := s.cfg.MCP.AcceptPin(req.Server, req.Tool)
	switch {
	case errors.Is(err, state.ErrNoPin):
		writeError(w, http.StatusNotFound, "no_pin", err.Error())
	case errors.Is(err, state.ErrNothingToAccept):
		writeError(w, http.StatusConflict, "nothing_to_accept", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "accept_failed", err.Error())
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// newStdLog adapts a Printf logger for net/http's ErrorLog.
func newStdLog(l interface{ Printf(string, ...any) }) *log.Logger {
	return log.New(printfWriter{l}, "", 0)
}

type printfWriter struct {
	l interface{ Printf(string, ...any) }
}

func (p printfWriter) Write(b []byte) (int, error) {
	p.l.Printf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
