package llm

import (
	"bytes"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Google Gemini generateContent and streamGenerateContent, as the API
// reference documents them and genai reads them. A streamed answer is
// GenerateContentResponse chunks: SSE events with alt=sse, else one JSON
// array sent as it grows; either way each chunk adds to the turn.

type gemAnswer struct {
	Candidates []struct {
		Index   int `json:"index"`
		Content struct {
			Parts []struct {
				Text    *string `json:"text"`
				Thought bool    `json:"thought"`
				Call    *struct {
					ID   string         `json:"id"`
					Name string         `json:"name"`
					Args jsontext.Value `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		Finish string `json:"finishReason"`
	} `json:"candidates"`
	Usage *struct {
		Prompt     int64 `json:"promptTokenCount"`
		ToolPrompt int64 `json:"toolUsePromptTokenCount"`
		Candidates int64 `json:"candidatesTokenCount"`
		Cached     int64 `json:"cachedContentTokenCount"`
		Thoughts   int64 `json:"thoughtsTokenCount"`
	} `json:"usageMetadata"`
	Model string `json:"modelVersion"`
}

// add applies one answer (or one streamed chunk) to t, and reports
// whether it carried output.
func (a *gemAnswer) add(t *Turn) (out bool) {
	if a.Model != "" {
		t.Model = a.Model
	}
	// Usage counts are the turn's so far: a later chunk's replace an
	// earlier one's. Thoughts are output tokens besides the candidates'.
	if u := a.Usage; u != nil {
		t.HasUsage = true
		t.Usage = Usage{Input: u.Prompt + u.ToolPrompt, Output: u.Candidates + u.Thoughts, Cached: u.Cached, Reasoning: u.Thoughts}
	}
	for _, c := range a.Candidates {
		if c.Finish != "" && c.Index == 0 {
			t.StopReason = c.Finish
		}
		for _, p := range c.Content.Parts {
			switch {
			case p.Call != nil:
				call := ToolCall{ID: p.Call.ID, Name: p.Call.Name}
				args := []byte(p.Call.Args)
				if len(args) == 0 {
					args = []byte("{}")
				}
				call.setArgs(args)
				t.ToolCalls = append(t.ToolCalls, call)
				out = true
			case p.Text != nil && c.Index == 0:
				if p.Thought {
					addText(&t.Reasoning, *p.Text)
				} else {
					addText(&t.Text, *p.Text)
				}
				out = out || *p.Text != ""
			}
		}
	}
	return out
}

// readGemini reads a whole answer: one response object, or the JSON
// array a streamGenerateContent without alt=sse answers with.
func readGemini(body []byte) (Turn, error) {
	t := Turn{Dialect: Gemini}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		var chunks []gemAnswer
		if err := json.Unmarshal(body, &chunks); err != nil {
			return t, unreadable(Gemini, "answer", err)
		}
		for i := range chunks {
			chunks[i].add(&t)
		}
		t.Streamed = true
		return t, nil
	}
	var a gemAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return t, unreadable(Gemini, "answer", err)
	}
	a.add(&t)
	return t, nil
}

type gemStream struct{ t Turn }

func (s *gemStream) event(data []byte) (first bool, err error) {
	var a gemAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return false, unreadable(Gemini, "stream chunk", err)
	}
	return a.add(&s.t), nil
}

func (s *gemStream) turn() Turn {
	t := s.t
	t.Dialect, t.Streamed = Gemini, true
	return t
}
