package approval

import (
	"strings"
	"testing"
)

// An approver never sees a credential value agentg holds: Request.Mask
// (the leak guard's) replaces it in the arguments, the URL and the body
// preview, while the grant still binds the call as sent.
func TestBeginMasksHeldValues(t *testing.T) {
	const value = "ghp_held-value-123456"
	mask := func(s string) string { return strings.ReplaceAll(s, value, "secret(gh)") }
	b := newBroker(t, StoreOptions{})
	q := heldHTTP(`{"token":"` + value + `"}`)
	q.URL += "?k=" + value
	q.Args = []byte(`{"a":"` + value + `"}`)
	q.Mask = mask
	a := b.Begin(q).Approval()
	for what, s := range map[string]string{"body": a.Body, "url": a.URL, "args": a.Args} {
		if strings.Contains(s, value) || !strings.Contains(s, "secret(gh)") {
			t.Errorf("the approval's %s shows %q", what, s)
		}
	}
	q.Mask = nil
	if a2 := b.Begin(q).Approval(); a2.BodySHA256 != a.BodySHA256 {
		t.Error("the masked approval binds another body")
	}
}
