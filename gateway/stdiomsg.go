package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	json2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// stdioMsg is one JSON-RPC message on a command server's stream, read
// only as far as routing it needs: its id, method and the params fields
// the stdio multiplexer maps (progress token, cancelled request id,
// subscription id). It is read strictly (duplicate names and invalid
// UTF-8 refused, one object, no batch) and written again from what was
// read, so the line that goes on is the one that was routed.
type stdioMsg struct {
	JSONRPC string         `json:"jsonrpc"`
	ID      jsontext.Value `json:"id,omitzero"`
	Method  string         `json:"method,omitempty"`
	Params  jsontext.Value `json:"params,omitzero"`
	Result  jsontext.Value `json:"result,omitzero"`
	Error   jsontext.Value `json:"error,omitzero"`
}

// The _meta keys the multiplexer maps.
const (
	metaProgressToken  = "progressToken"
	metaSubscriptionID = "io.modelcontextprotocol/subscriptionId"
)

var errStdioBatch = errors.New("a JSON-RPC batch (the stdio multiplexer routes one message at a time)")

// parseStdioMsg reads one line.
func parseStdioMsg(line []byte) (*stdioMsg, error) {
	line = bytes.TrimSpace(line)
	if len(line) > 0 && line[0] == '[' {
		return nil, errStdioBatch
	}
	var m stdioMsg
	if err := json2.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("not one JSON-RPC message: %w", err)
	}
	if m.JSONRPC != "2.0" {
		return nil, errors.New(`not JSON-RPC 2.0 (jsonrpc is not "2.0")`)
	}
	if m.hasID() {
		if k := m.ID.Kind(); k != '"' && k != '0' {
			return nil, fmt.Errorf("a JSON-RPC id must be a string or a number, not %s", m.ID)
		}
		if err := m.ID.Canonicalize(); err != nil {
			return nil, fmt.Errorf("id: %w", err)
		}
	}
	if m.Method == "" && !m.hasID() {
		return nil, errors.New("neither a request, a notification nor an answer")
	}
	if len(m.Params) > 0 && m.Params.Kind() != '{' && m.Params.Kind() != '[' {
		return nil, errors.New("params must be an object or an array")
	}
	return &m, nil
}

func (m *stdioMsg) hasID() bool { return len(m.ID) > 0 && m.ID.Kind() != 'n' }

// isRequest, isNotification, isAnswer: what the message is.
func (m *stdioMsg) isRequest() bool      { return m.Method != "" && m.hasID() }
func (m *stdioMsg) isNotification() bool { return m.Method != "" && !m.hasID() }
func (m *stdioMsg) isAnswer() bool       { return m.Method == "" && m.hasID() }

// key is the message's id as a map key (canonical JSON).
func (m *stdioMsg) key() string { return string(m.ID) }

func (m *stdioMsg) encode() ([]byte, error) { return json2.Marshal(m) }

// param is params' member name (nil when absent or params is no object).
func (m *stdioMsg) param(name string) jsontext.Value {
	p, _ := m.paramObject()
	return p[name]
}

// meta is params._meta's member name.
func (m *stdioMsg) meta(name string) jsontext.Value {
	raw := m.param("_meta")
	if raw.Kind() != '{' {
		return nil
	}
	var meta map[string]jsontext.Value
	if json2.Unmarshal(raw, &meta) != nil {
		return nil
	}
	return meta[name]
}

func (m *stdioMsg) paramObject() (map[string]jsontext.Value, error) {
	if m.Params.Kind() != '{' {
		return nil, errors.New("params is not an object")
	}
	var p map[string]jsontext.Value
	if err := json2.Unmarshal(m.Params, &p); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	return p, nil
}

// setParam sets params' member name to v.
func (m *stdioMsg) setParam(name string, v jsontext.Value) error {
	p, err := m.paramObject()
	if err != nil {
		return err
	}
	p[name] = v
	b, err := json2.Marshal(p)
	if err != nil {
		return err
	}
	m.Params = b
	return nil
}

// setMeta sets params._meta's member name to v.
func (m *stdioMsg) setMeta(name string, v jsontext.Value) error {
	raw := m.param("_meta")
	meta := map[string]jsontext.Value{}
	if len(raw) > 0 {
		if raw.Kind() != '{' {
			return errors.New("params._meta is not an object")
		}
		if err := json2.Unmarshal(raw, &meta); err != nil {
			return fmt.Errorf("params._meta: %w", err)
		}
	}
	meta[name] = v
	b, err := json2.Marshal(meta)
	if err != nil {
		return err
	}
	return m.setParam("_meta", b)
}

// childID is the id the multiplexer gives the n-th request it sends a
// child.
func childID(n int64) jsontext.Value { return jsontext.Value(strconv.FormatInt(n, 10)) }

// tokenValue is a progress token of the multiplexer's (a JSON string).
func tokenValue(n int64) jsontext.Value {
	return jsontext.Value(`"agentg-stdio-` + strconv.FormatInt(n, 10) + `"`)
}

// lenientStdioID is the id of a line the strict read refused, when a
// lenient reader (as the SDK's clients are) finds one: the request it
// answers must still get an answer, an error, never a hang.
func lenientStdioID(line []byte) (string, bool) {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(line, &m) != nil || len(m.ID) == 0 {
		return "", false
	}
	v := jsontext.Value(bytes.Clone(m.ID))
	if k := v.Kind(); k != '0' && k != '"' || v.Canonicalize() != nil {
		return "", false
	}
	return string(v), true
}

// errorAnswer is a JSON-RPC error answer to id.
func errorAnswer(id jsontext.Value, code int, msg string) []byte {
	b, _ := json2.Marshal(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": code, "message": msg}})
	return b
}

// mustJSON is v as JSON; for values this package builds, which always
// encode.
func mustJSON(v any) jsontext.Value {
	b, err := json2.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("gateway: encode %T: %v", v, err))
	}
	return b
}
