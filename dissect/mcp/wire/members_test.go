package wire

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// factsOf agrees with a Lookup per member, whatever the result holds.
func TestFactsOf(t *testing.T) {
	for _, res := range factsSeeds {
		checkFacts(t, res)
	}
}

var factsSeeds = []string{
	`{"content":[{"type":"text","text":"x"}],"isError":true}`,
	`{"isError":false,"resultType":"input_required","inputRequests":{}}`,
	`{"IsError":true,"ResultType":"complete"}`,
	`{"resultType":7}`,
	`{"task":{"taskId":"t-1","status":"working"},"content":[]}`,
	`{"content":"a \"isError\":true string"}`,
	`[]`,
	`{}`,
}

// FuzzFacts holds the one-pass reader to Lookup on any result Parse
// accepts: the guard must never read isError, resultType or task otherwise
// than the policy's lookups do.
func FuzzFacts(f *testing.F) {
	for _, s := range factsSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, res string) {
		msg := `{"jsonrpc":"2.0","id":1,"result":` + res + `}`
		body, err := Parse([]byte(msg), Limits{})
		if err != nil || len(body.Messages) != 1 {
			return // only results Parse lets through reach factsOf
		}
		checkFacts(t, string(body.Messages[0].Result))
	})
}

func checkFacts(t *testing.T, res string) {
	t.Helper()
	f := FactsOf(jsontext.Value(res))
	isErr, _ := Lookup(jsontext.Value(res), "/isError")
	if want := isErr.Kind == ValueBool && isErr.Text == "true"; f.IsError != want {
		t.Errorf("%s: isError %v, want %v", res, f.IsError, want)
	}
	if want := ResultType(jsontext.Value(res)); f.ResultType != want {
		t.Errorf("%s: resultType %q, want %q", res, f.ResultType, want)
	}
	task, ok := Lookup(jsontext.Value(res), "/task")
	if ok != (f.Task != nil) || ok && string(task.Raw) != string(f.Task) {
		t.Errorf("%s: task %s, want %s", res, f.Task, task.Raw)
	}
}
