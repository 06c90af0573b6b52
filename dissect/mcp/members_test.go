package mcp

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// factsOf agrees with a Lookup per member, whatever the result holds.
func TestFactsOf(t *testing.T) {
	for _, res := range []string{
		`{"content":[{"type":"text","text":"x"}],"isError":true}`,
		`{"isError":false,"resultType":"input_required","inputRequests":{}}`,
		`{"IsError":true,"ResultType":"complete"}`,
		`{"resultType":7}`,
		`{"task":{"taskId":"t-1","status":"working"},"content":[]}`,
		`{"content":"a \"isError\":true string"}`,
		`[]`,
		`{}`,
	} {
		f := factsOf(jsontext.Value(res))
		isErr, _ := Lookup(jsontext.Value(res), "/isError")
		if want := isErr.Kind == ValueBool && isErr.Text == "true"; f.isError != want {
			t.Errorf("%s: isError %v, want %v", res, f.isError, want)
		}
		if want := ResultType(jsontext.Value(res)); f.resultType != want {
			t.Errorf("%s: resultType %q, want %q", res, f.resultType, want)
		}
		task, ok := Lookup(jsontext.Value(res), "/task")
		if ok != (f.task != nil) || ok && string(task.Raw) != string(f.task) {
			t.Errorf("%s: task %s, want %s", res, f.task, task.Raw)
		}
	}
}
