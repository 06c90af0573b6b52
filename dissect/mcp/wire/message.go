package wire

import (
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// MessageKind says which of the four JSON-RPC shapes a message has.
type MessageKind uint8

const (
	KindRequest       MessageKind = iota + 1 // method and id
	KindNotification                         // method, no id
	KindResponse                             // result and id
	KindErrorResponse                        // error; id a request's, null, or absent
)

func (k MessageKind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindErrorResponse:
		return "error"
	}
	return "invalid"
}

// Message is one JSON-RPC message as Parse read it. The jsontext.Values are
// the exact bytes of the body (nil when the member is absent); the strings
// are decoded, and only set for the methods that carry them.
type Message struct {
	Kind MessageKind
	// ID is the id token exactly as sent: 1 and "1" differ, and writing
	// it back gives the client the bytes it sent. It is `null` only in an
	// error response, and nil where absent.
	ID     jsontext.Value
	Method string
	Params jsontext.Value // the whole params object
	Result jsontext.Value // a response's result object
	Error  jsontext.Value // an error response's error object

	Tool   string         // tools/call: params.name
	Prompt string         // prompts/get: params.name
	URI    string         // resources/read: params.uri
	Args   jsontext.Value // tools/call and prompts/get: params.arguments, an object
	Meta   jsontext.Value // params._meta (2026-07-28 carries the protocol version there)
	// Task is params.task of a task-augmented request (2025-11-25): a
	// tools/call that the server runs as a task, answering with a task
	// handle now and the CallToolResult from tasks/result later.
	Task jsontext.Value
	// InputResponses is params.inputResponses (2026-07-28): the client's
	// retry, under a new id, of a request the server answered with
	// input_required. It is a new request and is decided again.
	InputResponses jsontext.Value
	// RequestState is params.requestState (2026-07-28), the opaque
	// string a retry echoes from the input_required result it answers;
	// "" when absent or not a string.
	RequestState string
	// TaskID is params.taskId (2025-11-25 tasks/get, tasks/result,
	// tasks/cancel); "" when absent or not a string.
	TaskID string

	Raw jsontext.Value // the whole message, exactly as sent

	argsAt, resultAt int // offsets of Args and Result in Raw; -1 when absent
}

// envelope is what Parse collected about a message before it knows the
// method: members can come in any order.
type envelope struct {
	jsonrpc, hasID, idNull, method, result, errorObj bool
	name, uri                                        field
	args, resultSpan                                 span
	hasArgs                                          bool
	argsKind                                         jsontext.Kind
}

// field is a params member that names something.
type field struct {
	present, isString bool
	text              string
}

var envelopeNames = []string{"jsonrpc", "id", "method", "params", "result", "error"}

var paramNames = []string{"name", "arguments", "uri", "_meta", "task", "inputResponses", "requestState", "taskId"}

// message reads one message object; depth is that of its container.
func (p *parser) message(depth int) (*Message, error) {
	tok, sp, err := p.token()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, refuse(ReasonNotJSONRPC, CodeInvalidRequest, sp.start, "a message is a JSON object")
	}
	m := &Message{argsAt: -1, resultAt: -1}
	var env envelope
	osp, err := p.object(sp, depth+1, func(name []byte) (bool, error) {
		return p.envelopeMember(m, &env, name, depth+1)
	})
	if err != nil {
		return nil, err
	}
	m.Raw = p.src[osp.start:osp.end]
	if err := p.Classify(m, &env, osp); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *parser) envelopeMember(m *Message, env *envelope, name []byte, depth int) (bool, error) {
	switch string(name) {
	case "jsonrpc":
		_, sp, err := p.token()
		if err != nil {
			return true, err
		}
		if string(p.src[sp.start:sp.end]) != `"2.0"` {
			return true, refuse(ReasonNotJSONRPC, CodeInvalidRequest, sp.start, "jsonrpc is %.20s, not \"2.0\"", p.src[sp.start:sp.end])
		}
		env.jsonrpc = true
	case "id":
		tok, sp, err := p.token()
		if err != nil {
			return true, err
		}
		raw := p.src[sp.start:sp.end]
		switch tok.Kind() {
		case '"':
		case 'n':
			env.idNull = true
		case '0':
			if !safeInt(raw) {
				return true, refuse(ReasonBadID, CodeInvalidRequest, sp.start, "id %.30s is not an integer in -(2^53-1)..2^53-1 written plainly", raw)
			}
		default:
			return true, refuse(ReasonBadID, CodeInvalidRequest, sp.start, "id is not a string or a number")
		}
		m.ID, env.hasID = raw, true
	case "method":
		tok, sp, err := p.token()
		if err != nil {
			return true, err
		}
		if tok.Kind() != '"' {
			return true, refuse(ReasonNotJSONRPC, CodeInvalidRequest, sp.start, "method is not a string")
		}
		if m.Method, err = p.checkName(tok, sp, "method", noEscapes); err != nil {
			return true, err
		}
		env.method = true
	case "params":
		switch p.dec.PeekKind() {
		case 'n': // null params are absent params
			_, _, err := p.token()
			return true, err
		case '{':
		default:
			return false, refuse(ReasonBadParams, CodeInvalidParams, int(p.dec.InputOffset()), "params is not an object")
		}
		tok, sp, err := p.token()
		if err != nil {
			return true, err
		}
		_ = tok
		psp, err := p.object(sp, depth+1, func(name []byte) (bool, error) {
			return p.paramsMember(m, env, name, depth+1)
		})
		if err != nil {
			return true, err
		}
		m.Params = p.src[psp.start:psp.end]
	case "result", "error":
		if p.dec.PeekKind() != '{' {
			return true, refuse(ReasonBadResult, CodeInvalidRequest, int(p.dec.InputOffset()), "%s is not an object", name)
		}
		sp, err := p.value(depth)
		if err != nil {
			return true, err
		}
		if string(name) == "result" {
			m.Result, env.result, env.resultSpan = p.src[sp.start:sp.end], true, sp
		} else {
			m.Error, env.errorObj = p.src[sp.start:sp.end], true
		}
	default:
		if err := caseVariant(name, envelopeNames...); err != nil {
			return true, err
		}
		return false, nil
	}
	return true, nil
}

func (p *parser) paramsMember(m *Message, env *envelope, name []byte, depth int) (bool, error) {
	var err error
	var sp span
	switch string(name) {
	case "name", "uri":
		f, what, rule := &env.name, "name", noEscapes
		if string(name) == "uri" {
			f, what, rule = &env.uri, "uri", noUEscapes
		}
		f.present = true
		if p.dec.PeekKind() != '"' {
			return false, nil // refused later if the method needs it
		}
		tok, sp, err := p.token()
		if err != nil {
			return true, err
		}
		f.isString = true
		f.text, err = p.checkName(tok, sp, what, rule)
		return true, err
	case "arguments":
		env.argsKind = p.dec.PeekKind()
		if sp, err = p.value(depth); err == nil {
			env.args, env.hasArgs = sp, true
		}
	case "requestState", "taskId":
		if p.dec.PeekKind() != '"' {
			return false, nil
		}
		tok, _, err := p.token()
		if err != nil {
			return true, err
		}
		if string(name) == "taskId" {
			m.TaskID = tok.String()
		} else {
			m.RequestState = tok.String()
		}
		return true, nil
	case "_meta", "task", "inputResponses":
		if sp, err = p.value(depth); err == nil {
			v := jsontext.Value(p.src[sp.start:sp.end])
			switch string(name) {
			case "_meta":
				m.Meta = v
			case "task":
				m.Task = v
			default:
				m.InputResponses = v
			}
		}
	default:
		if err := caseVariant(name, paramNames...); err != nil {
			return true, err
		}
		return false, nil
	}
	return true, err
}

// classify decides the message's kind once every member has been read, and
// takes out what policy needs for the methods it rules.
func (p *parser) Classify(m *Message, env *envelope, osp span) error {
	bad := func(reason string, code int, format string, args ...any) error {
		return refuse(reason, code, osp.start, format, args...)
	}
	if !env.jsonrpc {
		return bad(ReasonNotJSONRPC, CodeInvalidRequest, `no "jsonrpc": "2.0" member`)
	}
	switch {
	case env.method && (env.result || env.errorObj):
		return bad(ReasonNotJSONRPC, CodeInvalidRequest, "both a method and a result or error")
	case env.method && env.hasID:
		if env.idNull {
			return bad(ReasonBadID, CodeInvalidRequest, "a request's id is null")
		}
		m.Kind = KindRequest
	case env.method:
		m.Kind = KindNotification
	case env.result && env.errorObj:
		return bad(ReasonNotJSONRPC, CodeInvalidRequest, "both a result and an error")
	case env.result:
		if !env.hasID || env.idNull {
			return bad(ReasonBadID, CodeInvalidRequest, "a result without an id")
		}
		m.Kind = KindResponse
		m.resultAt = env.resultSpan.start - osp.start
	case env.errorObj:
		m.Kind = KindErrorResponse
	default:
		return bad(ReasonNotJSONRPC, CodeInvalidRequest, "neither a method nor a result nor an error")
	}
	need := func(f field, what string) (string, error) {
		if !f.isString {
			return "", bad(ReasonBadParams, CodeInvalidParams, "%s without a string params.%s", m.Method, what)
		}
		return f.text, nil
	}
	var err error
	switch m.Method {
	case "tools/call":
		m.Tool, err = need(env.name, "name")
	case "prompts/get":
		m.Prompt, err = need(env.name, "name")
	case "resources/read":
		m.URI, err = need(env.uri, "uri")
		return err
	default:
		if decidedVariant(m.Method) {
			// No peer dispatches "tools/CAll" as tools/call today, but a
			// lenient one could, and no client sends it: refused, so the
			// decision can never rest on the spelling.
			return bad(ReasonMethodVariant, CodeInvalidRequest, "method %q is a decided method in another spelling", m.Method)
		}
		return nil
	}
	if err != nil || !env.hasArgs {
		return err
	}
	if env.argsKind != '{' {
		return bad(ReasonBadParams, CodeInvalidParams, "%s with params.arguments that is not an object", m.Method)
	}
	m.Args = p.src[env.args.start:env.args.end]
	m.argsAt = env.args.start - osp.start
	return nil
}

// batch reads a JSON-RPC batch: an array of message objects, not empty.
func (p *parser) batch() ([]*Message, error) {
	if _, _, err := p.token(); err != nil {
		return nil, err
	}
	var msgs []*Message
	for {
		switch p.dec.PeekKind() {
		case ']':
			_, sp, err := p.token()
			if err == nil && len(msgs) == 0 {
				err = refuse(ReasonEmptyBatch, CodeInvalidRequest, sp.start, "a batch with no messages")
			}
			return msgs, err
		case '{':
			m, err := p.message(1)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m)
		case 0:
			_, _, err := p.token()
			return nil, err
		default:
			return nil, refuse(ReasonNotJSONRPC, CodeInvalidRequest, int(p.dec.InputOffset()), "a batch element that is not an object")
		}
	}
}

// safeInt reports whether a JSON number is an integer written plainly
// (no fraction, exponent or -0) within ±(2^53-1). Peers echo an id back as
// they decoded it: JavaScript turns 1.0 into 1 and rounds 2^53+1, so any
// other number would come back as different bytes than it went out.
func safeInt(raw []byte) bool {
	s := raw
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 16 || (s[0] == '0' && (len(s) > 1 || len(raw) > 1)) {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	return err == nil && n <= 1<<53-1
}

// IDKey is the id's identity (ids.go): the one key every transport
// tracks a request in flight by and matches its answer with.
func (m *Message) IDKey() string {
	return IDKey(m.ID)
}

// WithArgs returns the message with params.arguments replaced by args and
// every other byte as it was. It reports false when the message had no
// arguments member to replace.
func (m *Message) WithArgs(args jsontext.Value) ([]byte, bool) {
	return splice(m.Raw, m.argsAt, len(m.Args), args)
}

// WithResult returns the response with its result replaced, every other
// byte as it was. It reports false for a message that is not a response.
func (m *Message) WithResult(result jsontext.Value) ([]byte, bool) {
	return splice(m.Raw, m.resultAt, len(m.Result), result)
}

func splice(raw []byte, at, n int, v []byte) ([]byte, bool) {
	if at < 0 {
		return nil, false
	}
	out := make([]byte, 0, len(raw)-n+len(v))
	out = append(out, raw[:at]...)
	out = append(out, v...)
	return append(out, raw[at+n:]...), true
}

// EncodeBatch joins messages into a JSON-RPC batch.
func EncodeBatch(msgs [][]byte) []byte {
	n := 2
	for _, m := range msgs {
		n += len(m) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, m := range msgs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, m...)
	}
	return append(out, ']')
}

// ResultType is a result's resultType (2026-07-28): "complete" for an
// ordinary result, "input_required" for an InputRequiredResult, whose
// client retries the request with inputResponses. A result without one is
// "complete", as the specification has clients read earlier revisions'
// results; one whose resultType is not a string is "".
func ResultType(result jsontext.Value) string {
	v, ok := Lookup(result, "/resultType")
	switch {
	case !ok:
		return "complete"
	case v.Kind != ValueString:
		return ""
	}
	return v.Text
}

// decidedVariant reports a method that is tools/call, prompts/get or
// resources/read but for case or surrounding white space.
func decidedVariant(method string) bool {
	t := strings.TrimSpace(method)
	for _, d := range [...]string{"tools/call", "prompts/get", "resources/read"} {
		if strings.EqualFold(t, d) {
			return true
		}
	}
	return false
}
