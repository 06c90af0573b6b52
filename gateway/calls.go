package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstreamError is what the client gets for err: the server's (or the
// guard's) JSON-RPC error as it was sent, code, message and data, not the
// SDK client's wrapping of it; any other failure as the SDK server
// answers an error (internal error), naming the server.
func upstreamError(server string, err error) error {
	var je *jsonrpc.Error
	if errors.As(err, &je) {
		return je
	}
	return fmt.Errorf("agentg gateway: mcp server %s: %w", server, err)
}

// The client's requests, routed: each goes to the server its name (or
// URI) came from, under the server's own name, through that server's
// upstream session, where the guard decides it. The answer (or the
// guard's refusal) is the client's.

// forwardMeta is the client's _meta as it goes to a server on session
// cs: without the client's protocol revision (the upstream session has
// its own, which the SDK client adds), and with the client's identity and
// capabilities only where the server reads them per request (2026-07-28),
// so that a server asks only for what the client itself declared.
func forwardMeta(m sdk.Meta, cs *sdk.ClientSession) sdk.Meta {
	if len(m) == 0 {
		return nil
	}
	out := make(sdk.Meta, len(m))
	for k, v := range m {
		out[k] = v
	}
	delete(out, sdk.MetaKeyProtocolVersion)
	if r := cs.InitializeResult(); r == nil || r.ProtocolVersion < "2026-07-28" {
		delete(out, sdk.MetaKeyClientInfo)
		delete(out, sdk.MetaKeyClientCapabilities)
	}
	return out
}

// withToken is m with the gateway's progress token for the call in
// place of the client's ("" leaves m as it is).
func withToken(m sdk.Meta, tok string) sdk.Meta {
	if tok == "" {
		return m
	}
	if m == nil {
		m = sdk.Meta{}
	}
	m["progressToken"] = tok
	return m
}

// send runs one client request on u's session to server: call gets the
// session and the _meta to send (the client's as forwardMeta passes it,
// with the gateway's progress token tok, if any), and an error is
// named as the server's.
func send[R any](ctx context.Context, u *upstream, server string, meta sdk.Meta, tok string,
	call func(context.Context, *sdk.ClientSession, sdk.Meta) (R, error)) (R, error) {
	var res R
	err := u.do(ctx, func(ctx context.Context, cs *sdk.ClientSession) error {
		var err error
		res, err = call(ctx, cs, withToken(forwardMeta(meta, cs), tok))
		return err
	})
	if err != nil {
		var zero R
		return zero, upstreamError(server, err)
	}
	return res, nil
}

// callTool is the handler of one catalogue tool.
func (s *session) callTool(r route) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		u, err := s.upstream(r.server)
		if err != nil {
			return nil, err
		}
		p := &sdk.CallToolParams{Meta: req.Params.Meta, Name: r.name,
			InputResponses: req.Params.InputResponses, RequestState: req.Params.RequestState}
		if len(req.Params.Arguments) > 0 {
			p.Arguments = req.Params.Arguments
		}
		tok, untrack := s.tracked(ctx, req.Params.GetProgressToken(), req.Session)
		defer untrack()
		defer s.inFlight(ctx, r.server, req.Session)()
		return send(ctx, u, r.server, p.Meta, tok, func(ctx context.Context, cs *sdk.ClientSession, m sdk.Meta) (*sdk.CallToolResult, error) {
			q := *p
			q.Meta = m
			return cs.CallTool(ctx, &q)
		})
	}
}

func (s *session) getPrompt(r route) sdk.PromptHandler {
	return func(ctx context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		u, err := s.upstream(r.server)
		if err != nil {
			return nil, err
		}
		p := *req.Params
		p.Name = r.name
		tok, untrack := s.tracked(ctx, req.Params.GetProgressToken(), req.Session)
		defer untrack()
		defer s.inFlight(ctx, r.server, req.Session)()
		return send(ctx, u, r.server, p.Meta, tok, func(ctx context.Context, cs *sdk.ClientSession, m sdk.Meta) (*sdk.GetPromptResult, error) {
			q := p
			q.Meta = m
			return cs.GetPrompt(ctx, &q)
		})
	}
}

func (s *session) readResource(server string) sdk.ResourceHandler {
	return func(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		u, err := s.upstream(server)
		if err != nil {
			return nil, err
		}
		p := *req.Params
		defer s.inFlight(ctx, server, req.Session)()
		return send(ctx, u, server, p.Meta, "", func(ctx context.Context, cs *sdk.ClientSession, m sdk.Meta) (*sdk.ReadResourceResult, error) {
			q := p
			q.Meta = m
			return cs.ReadResource(ctx, &q)
		})
	}
}

// complete routes completion/complete by its reference: a prompt's
// catalogue name, or a resource template.
func (s *session) complete(ctx context.Context, req *sdk.CompleteRequest) (*sdk.CompleteResult, error) {
	p := *req.Params
	if p.Ref == nil {
		return nil, fmt.Errorf("completion/complete without a ref")
	}
	ref := *p.Ref
	var r route
	var ok bool
	switch ref.Type {
	case "ref/prompt":
		if r, ok = s.cat.lookup(kindPrompts, ref.Name); ok {
			ref.Name = r.name
		}
	case "ref/resource":
		if r, ok = s.cat.lookup(kindTemplates, ref.URI); !ok {
			r, ok = s.cat.lookup(kindResources, ref.URI)
		}
	}
	if !ok {
		return nil, fmt.Errorf("agentg gateway: no server in the catalogue has %s %q", ref.Type, ref.Name+ref.URI)
	}
	p.Ref = &ref
	u, err := s.upstream(r.server)
	if err != nil {
		return nil, err
	}
	return send(ctx, u, r.server, p.Meta, "", func(ctx context.Context, cs *sdk.ClientSession, m sdk.Meta) (*sdk.CompleteResult, error) {
		q := p
		q.Meta = m
		return cs.Complete(ctx, &q)
	})
}

// resourceServer is the server a resource URI is read from: the one that
// listed it.
func (s *session) resourceServer(uri string) (*upstream, error) {
	r, ok := s.cat.lookup(kindResources, uri)
	if !ok {
		return nil, fmt.Errorf("agentg gateway: no server in the catalogue lists resource %q", uri)
	}
	return s.upstream(r.server)
}

func (s *session) subscribe(ctx context.Context, req *sdk.SubscribeRequest) error {
	u, err := s.resourceServer(req.Params.URI)
	if err != nil {
		return err
	}
	if err := u.do(ctx, func(ctx context.Context, cs *sdk.ClientSession) error {
		p := *req.Params
		p.Meta = forwardMeta(p.Meta, cs)
		return cs.Subscribe(ctx, &p)
	}); err != nil {
		return upstreamError(u.bind.Name, err)
	}
	return nil
}

func (s *session) unsubscribe(ctx context.Context, req *sdk.UnsubscribeRequest) error {
	u, err := s.resourceServer(req.Params.URI)
	if err != nil {
		return err
	}
	if err := u.do(ctx, func(ctx context.Context, cs *sdk.ClientSession) error {
		p := *req.Params
		p.Meta = forwardMeta(p.Meta, cs)
		return cs.Unsubscribe(ctx, &p)
	}); err != nil {
		return upstreamError(u.bind.Name, err)
	}
	return nil
}
