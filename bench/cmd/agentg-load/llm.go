package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/agentg/agentg/bench"
)

// runLLM runs the model-call bench (bench/llm.go) and prints its table:
// what the llm: section adds to interception alone.
func runLLM(cfg bench.Config, o bench.Options, runs int, asJSON bool, stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "agentg-load: model-call bench: two agentg processes, %d rounds\n", runs)
	rep, err := bench.RunLLM(cfg, o, runs)
	if err != nil {
		return fmt.Errorf("model-call bench: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	met := func(ok bool) string { return map[bool]string{true: "yes", false: "**no**"}[ok] }
	fmt.Fprintf(stdout, "\n## Model calls (intercepted OpenAI-compatible provider, %d rounds; llm: section against interception alone)\n\n", rep.Rounds)
	fmt.Fprintln(stdout, "| workload | intercept | llm section | added (median of paired differences) | target | met |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|")
	fmt.Fprintf(stdout, "| time to first token, p50 (1 client, %d-token streams, calls alternating between the two) | %s | %s | %s | < 1ms | %s |\n",
		bench.LLMShortTokens, dur(rep.TTFTIntercept.P50), dur(rep.TTFTLLM.P50), signed(rep.TTFTAdded), met(rep.TTFTAdded < 1e6))
	fmt.Fprintf(stdout, "| time to first token, p99 | %s | %s | %s | | |\n",
		dur(rep.TTFTIntercept.P99), dur(rep.TTFTLLM.P99), signed(rep.TTFTLLM.P99-rep.TTFTIntercept.P99))
	fmt.Fprintf(stdout, "| agentg CPU per 1,000 streamed tokens (%d-token streams, concurrency %d) | %s | %s | %s | report | |\n",
		bench.LLMStreamTokens, o.Concurrency, dur(rep.CPUPer1kIntercept), dur(rep.CPUPer1kLLM), signed(rep.CPUPer1kLLM-rep.CPUPer1kIntercept))
	fmt.Fprintf(stdout, "| streamed calls/s | %.0f | %.0f | | | |\n", rep.StreamIntercept.ReqPerSec, rep.StreamLLM.ReqPerSec)
	fmt.Fprintf(stdout, "| whole %d KiB answer, p50 (1 client; calls alternate between the processes and between 2 connections of each) | %s | %s | %.3f× | < 1.05× | %s |\n",
		bench.LLMWholeBytes>>10, dur(rep.WholeIntercept.P50), dur(rep.WholeLLM.P50), rep.WholeRatio, met(rep.WholeRatio < 1.05))
	fmt.Fprintf(stdout, "| whole %d KiB answer, p50, back to back on one connection | %s | %s | %.3f× | report | |\n",
		bench.LLMWholeBytes>>10, dur(rep.BackToBackIntercept.P50), dur(rep.BackToBackLLM.P50), rep.BackToBackRatio)
	fmt.Fprintf(stdout, "\nPer round: TTFT added %v; whole answer %v; back to back %v\n", rep.TTFTRuns, ratios(rep.WholeRuns), ratios(rep.BackToBackRuns))
	return nil
}

func signed(d time.Duration) string {
	if d < 0 {
		return "-" + dur(-d)
	}
	return "+" + dur(d)
}
