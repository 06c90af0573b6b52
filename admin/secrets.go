package admin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/agentg/agentg/creds"
	"github.com/agentg/agentg/rules"
)

// The secrets endpoint: what the policy's credentials section holds,
// never a value.
//
//	GET /v1/secrets   {"items": [Secret...]}, by name
//
// Each secret is named with where its value comes from (as
// creds.Source.String prints it: "env GITHUB_TOKEN", "file /run/x",
// "command vault", "insecure_inline"), the bindings that attach it,
// whether agentg holds it (it is read on first use), the last read's
// failure, and when it was last attached. Nothing here reads a secret:
// listing never runs a command or opens a file.

// Secret is one secret as the API shows it. It has no field for a value,
// so no change to what is filled in can add one by accident.
type Secret struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"`
	Bindings []string `json:"bindings"` // ids of the bindings that use it, in policy order
	// State is "held" (read, kept for this policy load), "failed" (the
	// last read failed: Error says why) or "unread" (not needed yet, or
	// not since the policy was loaded).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// LastUse is when it was last attached to a request; absent when
	// never since agentg started (or when listed from a policy file).
	LastUse *time.Time `json:"last_use,omitempty"`
	// Inline marks a value written in the policy (insecure_inline).
	Inline bool `json:"insecure_inline,omitempty"`
}

// Secrets lists the secrets of eng's credentials section, by name, with
// their state in eng's store (a policy only loaded, never served, has
// every secret unread and unused).
func Secrets(eng *rules.Engine) []Secret {
	cr := eng.Credentials()
	store := cr.Store()
	users := map[string][]string{}
	for _, b := range cr.Bindings() {
		for _, n := range strings.Split(b.Secrets, ",") {
			users[n] = append(users[n], b.ID)
		}
	}
	out := []Secret{}
	for _, name := range store.Names() {
		src, _ := store.Source(name)
		st, _ := store.Status(name)
		s := Secret{Name: name, Source: src.String(), Bindings: users[name], State: "unread", Inline: src.Kind == creds.KindInline}
		if s.Bindings == nil {
			s.Bindings = []string{}
		}
		switch {
		case st.Held:
			s.State = "held"
		case st.Error != "":
			s.State, s.Error = "failed", st.Error
		}
		if !st.LastUse.IsZero() {
			t := st.LastUse.UTC()
			s.LastUse = &t
		}
		out = append(out, s)
	}
	return out
}

func (s *Server) serveSecrets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, List[Secret]{Items: Secrets(s.cfg.Policy.Engine())})
}

// Secrets is GET /v1/secrets.
func (c *Client) Secrets(ctx context.Context) ([]Secret, error) {
	var l List[Secret]
	err := c.call(ctx, http.MethodGet, "/v1/secrets", nil, &l)
	return l.Items, err
}
