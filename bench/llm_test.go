package bench

import (
	"os"
	"testing"
	"time"
)

// TestLLMHarness runs the model-call bench briefly: both processes start,
// the llm one is checked to read the answers (RunLLM fails otherwise),
// and every workload yields figures without errors.
func TestLLMHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two agentg processes")
	}
	rep, err := RunLLM(Config{Stderr: os.Stderr}, Options{Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond, Concurrency: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]LLMTTFT{"ttft intercept": rep.TTFTIntercept, "ttft llm": rep.TTFTLLM,
		"whole intercept": rep.WholeIntercept, "whole llm": rep.WholeLLM, "back to back llm": rep.BackToBackLLM} {
		if l.Samples == 0 || l.P50 <= 0 || l.P99 < l.P50 {
			t.Errorf("%s: %+v", name, l)
		}
	}
	for name, r := range map[string]Result{"stream intercept": rep.StreamIntercept, "stream llm": rep.StreamLLM} {
		// (agentg's CPU is read from /proc in 10ms ticks: a run this
		// short may show none.)
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors", name, r.Requests, r.Errors)
		}
	}
	if rep.WholeRatio <= 0 || rep.BackToBackRatio <= 0 {
		t.Errorf("report: %+v", rep)
	}
}
