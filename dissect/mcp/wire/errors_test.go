package wire

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestErrorResponse(t *testing.T) {
	for _, tc := range []struct {
		id   string
		data any
		want string
	}{
		{`1`, nil, `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"denied \"x\"\n"}}`},
		{`"1"`, map[string]any{"rule": "no-jira-delete", "a": 1}, `{"jsonrpc":"2.0","id":"1","error":{"code":-32001,"message":"denied \"x\"\n","data":{"a":1,"rule":"no-jira-delete"}}}`},
		{`"a\u0062"`, jsontext.Value(`{"rule":"r"}`), `{"jsonrpc":"2.0","id":"a\u0062","error":{"code":-32001,"message":"denied \"x\"\n","data":{"rule":"r"}}}`},
		{``, nil, `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"denied \"x\"\n"}}`},
		{`{"no":1}`, jsontext.Value(`{bad`), `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"denied \"x\"\n"}}`},
		{`-7`, func() {}, `{"jsonrpc":"2.0","id":-7,"error":{"code":-32001,"message":"denied \"x\"\n"}}`},
	} {
		got := string(ErrorResponse(jsontext.Value(tc.id), CodeDenied, "denied \"x\"\n", tc.data))
		if got != tc.want {
			t.Errorf("id %s:\n got %s\nwant %s", tc.id, got, tc.want)
		}
		if m := mustParse(t, []byte(got)); m.Kind != KindErrorResponse {
			t.Errorf("%s reads as %v", got, m.Kind)
		}
	}
	got := ToolErrorResult(jsontext.Value(`"c-1"`), "Denied by policy rule no-jira-delete.", nil, jsontext.Value(`{"agentg/rule":"no-jira-delete"}`))
	want := `{"jsonrpc":"2.0","id":"c-1","result":{"content":[{"type":"text","text":"Denied by policy rule no-jira-delete."}],"isError":true,"resultType":"complete","_meta":{"agentg/rule":"no-jira-delete"}}}`
	if string(got) != want {
		t.Errorf("ToolErrorResult:\n got %s\nwant %s", got, want)
	}
}

// interposer sits on the newline-delimited stream between the SDK's client
// and server and answers a tools/call for a denied tool itself, as the
// guard will: the server never sees it.
func interposer(t *testing.T, deny string, answer func(m *Message) []byte) (clientT, serverT mcp.Transport, ran func() int) {
	c2iR, c2iW := io.Pipe()
	i2sR, i2sW := io.Pipe()
	s2iR, s2iW := io.Pipe()
	i2cR, i2cW := io.Pipe()
	var mu sync.Mutex
	toClient := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		i2cW.Write(append(b, '\n'))
	}
	forwarded := 0
	go func() {
		sc := bufio.NewScanner(c2iR)
		for sc.Scan() {
			line := sc.Bytes()
			body, err := Parse(line, Limits{})
			if err != nil {
				t.Errorf("client message: %v", err)
				return
			}
			if m := body.Messages[0]; m.Tool == deny {
				toClient(answer(m))
				continue
			}
			mu.Lock()
			if strings.Contains(string(line), deny) {
				forwarded++
			}
			mu.Unlock()
			i2sW.Write(append(line, '\n'))
		}
		i2sW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(s2iR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			toClient(append([]byte(nil), sc.Bytes()...))
		}
		i2cW.Close()
	}()
	ran = func() int { mu.Lock(); defer mu.Unlock(); return forwarded }
	return &mcp.IOTransport{Reader: i2cR, Writer: c2iW}, &mcp.IOTransport{Reader: i2sR, Writer: s2iW}, ran
}

// The official Go SDK client reads both answers to a denied call as they
// are meant, at every revision: ErrorResponse as a JSON-RPC error with the
// code and data, ToolErrorResult as the tool failing.
func TestDenialsReadBySDK(t *testing.T) {
	for _, rev := range revisions {
		for _, asResult := range []bool{false, true} {
			answer := func(m *Message) []byte {
				if asResult {
					return ToolErrorResult(m.ID, "Denied by policy rule no-drop.")
				}
				return ErrorResponse(m.ID, CodeDenied, "denied by policy", map[string]string{"rule": "no-drop"})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			clientT, serverT, forwarded := interposer(t, "db.drop", answer)
			ss, err := sdkServer().Connect(ctx, serverT, nil)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, clientT, &mcp.ClientSessionOptions{ProtocolVersion: rev})
			if err != nil {
				t.Fatalf("%s: %v", rev, err)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "db.drop", Arguments: map[string]any{"table": "users"}})
			if asResult {
				if err != nil || !res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "Denied by policy rule no-drop." {
					t.Errorf("%s: deny as result: %+v, %v", rev, res, err)
				}
			} else {
				var werr *jsonrpc.Error
				var data map[string]string
				if !errors.As(err, &werr) || werr.Code != CodeDenied || json.Unmarshal(werr.Data, &data) != nil || data["rule"] != "no-drop" {
					t.Errorf("%s: deny as error: %+v, %v", rev, res, err)
				}
			}
			if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "a"}}); err != nil || res.IsError {
				t.Errorf("%s: allowed call after a denial: %+v, %v", rev, res, err)
			}
			if n := forwarded(); n != 0 {
				t.Errorf("%s: the denied call reached the server %d times", rev, n)
			}
			cs.Close()
			ss.Close()
			cancel()
		}
	}
}
