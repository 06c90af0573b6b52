// Package llm reads model API exchanges: which dialect a request speaks
// and what it asks for, and, from the answer, whole or streamed, what the
// model did in that turn: the model that served it, the tokens it used,
// why it stopped, the tool calls it asked for, and the text and visible
// reasoning that came before them.
//
// The dialects are OpenAI Chat Completions (and the OpenAI-compatible
// servers that copy it: vLLM, Ollama, LiteLLM), OpenAI Responses,
// Anthropic Messages and Google Gemini generateContent and
// streamGenerateContent. Each is read the way the provider's own SDK
// reads it, field for field; the tests hold every reading against the
// SDK's own (openai-go, anthropic-sdk-go, genai).
//
// The contract: llm reads and reports; it decides nothing (the policy's
// llm section does, in rules) and never holds up an answer. A streamed
// answer is read by Stream from the bytes as they pass (Stream.Write, or
// the Tee reader), after they were handed on, so reading it cannot delay
// the first token. What cannot be read is an error that says so, never a
// guess: the caller applies the policy's `unparsed:` to it.
//
// The one exception to "never holds up an answer" is the tool-use guard's
// rewriting (rewrite*.go), which the caller turns on: RewriteAnswer and
// Rewriter strike the tool calls a caller's Decider denies, holding a
// streamed answer's tool-call events (and only those) until the call is
// complete. They still decide nothing themselves.
//
// Besides reading: Recent keeps each agent's last turns, whose tool calls
// the MCP guard claims, each once (claim.go), and RewriteContent hands a
// request's conversation members to a rewriter (the proxy's redaction on
// the way to the provider), keeping every other byte.
package llm
