package otlp

import (
	"net"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentg/agentg/audit"
)

// kindTunnelOpen is proxy.KindTunnelOpen (audit may not import proxy).
const kindTunnelOpen = "tunnel-open"

// agentg's own attributes: what a decision adds to the conventions.
const (
	attrEventID    = attribute.Key("agentg.event.id")
	attrKind       = attribute.Key("agentg.event.kind")
	attrParent     = attribute.Key("agentg.event.parent")
	attrCausedBy   = attribute.Key("agentg.event.caused_by")
	attrAgent      = attribute.Key("agentg.agent")
	attrDecision   = attribute.Key("agentg.decision")
	attrRule       = attribute.Key("agentg.rule")
	attrRuleSource = attribute.Key("agentg.rule_source")
	attrReason     = attribute.Key("agentg.reason")
	attrDoor       = attribute.Key("agentg.door")
	attrServer     = attribute.Key("agentg.mcp.server")
	attrAction     = attribute.Key("agentg.mcp.action")
	attrRedactions = attribute.Key("agentg.mcp.redactions")
	attrBinding    = attribute.Key("agentg.credentials.binding")
	attrCredential = attribute.Key("agentg.credentials.name")
	attrProvider   = attribute.Key("agentg.llm.provider") // the policy's name for it
	attrDialect    = attribute.Key("agentg.llm.dialect")
	attrCost       = attribute.Key("agentg.llm.cost_usd")
	attrToolCalls  = attribute.Key("agentg.llm.tool_calls")
	attrUnparsed   = attribute.Key("agentg.llm.unparsed")
	attrBytesUp    = attribute.Key("agentg.bytes_up")
	attrBytesDown  = attribute.Key("agentg.bytes_down")
	attrApproval   = attribute.Key("agentg.approval.id")
	attrApvAction  = attribute.Key("agentg.approval.action")
)

// errDenied is error.type on a span whose request agentg refused.
const errDenied = "agentg.denied"

// describe returns the span's name, kind and attributes for e, appended
// to attrs.
func describe(e *audit.Event, attrs []attribute.KeyValue) (string, trace.SpanKind, []attribute.KeyValue) {
	attrs = append(attrs, attrEventID.String(e.ID), attrKind.String(e.Kind), attrDecision.String(e.Decision))
	attrs = optStr(attrs, attrParent, e.Parent)
	attrs = optStr(attrs, attrCausedBy, e.CausedBy)
	attrs = optStr(attrs, attrAgent, e.Agent)
	attrs = optStr(attrs, attrRule, e.Rule)
	attrs = optStr(attrs, attrRuleSource, e.RuleSource)
	attrs = optStr(attrs, attrReason, e.Reason)
	attrs = optStr(attrs, attrDoor, e.Door)
	attrs = optStr(attrs, attrBinding, e.Binding)
	attrs = optStr(attrs, attrCredential, e.Credential)
	if e.Client != "" {
		if h, p, err := net.SplitHostPort(e.Client); err == nil {
			attrs = append(attrs, semconv.ClientAddress(h))
			if n, err := strconv.Atoi(p); err == nil {
				attrs = append(attrs, semconv.ClientPort(n))
			}
		}
	}
	attrs = optStr(attrs, semconv.ServerAddressKey, e.Host)
	if e.Port != 0 {
		attrs = append(attrs, semconv.ServerPort(int(e.Port)))
	}
	attrs = optStr(attrs, semconv.NetworkPeerAddressKey, e.IP)
	if e.Decision == "deny" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errDenied))
	}
	switch {
	case e.LLM != nil:
		return describeLLM(e, attrs)
	case e.MCP != nil:
		return describeMCP(e, attrs)
	case e.DNS != nil:
		attrs = append(attrs, semconv.DNSQuestionName(e.Host))
		attrs = optStr(attrs, attribute.Key("agentg.dns.type"), e.DNS.Type)
		attrs = optStr(attrs, attribute.Key("agentg.dns.rcode"), e.DNS.Rcode)
		return "DNS " + e.DNS.Type, trace.SpanKindServer, attrs
	case e.Approval != nil:
		attrs = append(attrs, attrApproval.String(e.Approval.ID))
		attrs = optStr(attrs, attrApvAction, e.Approval.Action)
		if e.Kind == "approval" {
			return "approval " + e.Approval.Action, trace.SpanKindInternal, attrs
		}
	}
	return describeHTTP(e, attrs)
}

// describeHTTP is an exchange, a tunnel or anything else with a method:
// an HTTP client span ("GET", "CONNECT"), agentg being the client of the
// upstream.
func describeHTTP(e *audit.Event, attrs []attribute.KeyValue) (string, trace.SpanKind, []attribute.KeyValue) {
	name := e.Kind
	if e.Method != "" {
		name = e.Method
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(e.Method))
	}
	attrs = optStr(attrs, semconv.URLSchemeKey, e.Scheme)
	attrs = optStr(attrs, semconv.URLPathKey, e.Path)
	if e.Status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(e.Status))
	}
	if e.BytesUp != 0 || e.BytesDown != 0 {
		attrs = append(attrs, attrBytesUp.Int64(e.BytesUp), attrBytesDown.Int64(e.BytesDown))
	}
	return name, trace.SpanKindClient, attrs
}

// describeLLM is a model turn: a GenAI client span "OPERATION MODEL".
func describeLLM(e *audit.Event, attrs []attribute.KeyValue) (string, trace.SpanKind, []attribute.KeyValue) {
	m := e.LLM
	op := "chat"
	if m.Dialect == "gemini" {
		op = "generate_content"
	}
	attrs = append(attrs, semconv.GenAIOperationNameKey.String(op), semconv.GenAIProviderNameKey.String(providerName(m.Provider, m.Dialect)))
	attrs = optStr(attrs, attrProvider, m.Provider)
	attrs = optStr(attrs, attrDialect, m.Dialect)
	attrs = optStr(attrs, semconv.GenAIRequestModelKey, m.Model)
	attrs = optStr(attrs, semconv.GenAIResponseModelKey, m.ServedModel)
	if m.Stream {
		attrs = append(attrs, semconv.GenAIRequestStream(true))
	}
	if !m.NoUsage {
		attrs = append(attrs, semconv.GenAIUsageInputTokens(int(m.InputTokens)), semconv.GenAIUsageOutputTokens(int(m.OutputTokens)))
		if m.CachedTokens != 0 {
			attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokens(int(m.CachedTokens)))
		}
		if m.CacheWriteTokens != 0 {
			attrs = append(attrs, semconv.GenAIUsageCacheCreationInputTokens(int(m.CacheWriteTokens)))
		}
		if m.ReasoningTokens != 0 {
			attrs = append(attrs, semconv.GenAIUsageReasoningOutputTokens(int(m.ReasoningTokens)))
		}
	}
	if m.StopReason != "" {
		attrs = append(attrs, semconv.GenAIResponseFinishReasons(m.StopReason))
	}
	if m.TTFT > 0 {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunk(m.TTFT.Seconds()))
	}
	if m.Priced {
		attrs = append(attrs, attrCost.Float64(m.Cost))
	}
	if n := len(m.ToolCalls); n > 0 {
		names := make([]string, 0, min(n, audit.MaxToolCalls))
		for _, c := range m.ToolCalls[:min(n, audit.MaxToolCalls)] {
			names = append(names, c.Name)
		}
		attrs = append(attrs, attrToolCalls.StringSlice(names))
	}
	attrs = optStr(attrs, attrUnparsed, m.Unparsed)
	if e.Method != "" {
		attrs = append(attrs, semconv.HTTPRequestMethodKey.String(e.Method))
	}
	attrs = optStr(attrs, semconv.URLPathKey, e.Path)
	name := op
	if m.Model != "" {
		name += " " + m.Model
	}
	return name, trace.SpanKindClient, attrs
}

// providerName is gen_ai.provider.name: the convention's value for the
// well-known providers (the llm section's default provider names), the
// policy's own name for any other.
func providerName(policy, dialect string) string {
	switch policy {
	case "openai":
		return "openai"
	case "anthropic":
		return "anthropic"
	case "google":
		return "gcp.gemini" // generativelanguage.googleapis.com: the Gemini API
	case "":
		return dialect
	}
	return policy
}

// describeMCP is one MCP message: "METHOD TARGET" (tools/call TOOL,
// prompts/get PROMPT), or an action agentg recorded ("mcp server-new").
func describeMCP(e *audit.Event, attrs []attribute.KeyValue) (string, trace.SpanKind, []attribute.KeyValue) {
	m := e.MCP
	attrs = optStr(attrs, attrServer, m.Server)
	attrs = optStr(attrs, attrAction, m.Action)
	attrs = optStr(attrs, semconv.McpSessionIDKey, m.Session)
	attrs = optStr(attrs, semconv.McpProtocolVersionKey, m.Revision)
	if len(m.Redactions) > 0 {
		attrs = append(attrs, attrRedactions.StringSlice(m.Redactions))
	}
	if m.Action != "" && e.Method == "" {
		attrs = optStr(attrs, semconv.GenAIToolNameKey, m.Tool)
		return "mcp " + m.Action, trace.SpanKindInternal, attrs
	}
	attrs = optStr(attrs, semconv.McpMethodNameKey, e.Method)
	name, target := e.Method, ""
	switch {
	case m.Tool != "":
		target = m.Tool
		attrs = append(attrs, semconv.GenAIToolNameKey.String(m.Tool))
		if e.Method == "tools/call" {
			attrs = append(attrs, semconv.GenAIOperationNameExecuteTool)
		}
	case m.Prompt != "":
		target = m.Prompt
		attrs = append(attrs, semconv.GenAIPromptNameKey.String(m.Prompt))
	case m.URI != "":
		attrs = append(attrs, semconv.McpResourceURIKey.String(m.URI[:min(len(m.URI), audit.MaxArgs)]))
	}
	if target != "" {
		name += " " + target
	}
	if m.ErrorCode != 0 {
		attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(strconv.Itoa(m.ErrorCode)))
		if e.Decision != "deny" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(m.ErrorCode)))
		}
	} else if m.IsError && e.Decision != "deny" {
		attrs = append(attrs, semconv.ErrorTypeKey.String("tool_error"))
	}
	if name == "" {
		name = "mcp"
	}
	return name, trace.SpanKindClient, attrs
}

// status is the span's status: an error when agentg refused (with the
// reason) or the exchange failed.
func status(e *audit.Event) (codes.Code, string) {
	switch {
	case e.Decision == "deny":
		return codes.Error, e.Reason
	case e.Error != "":
		return codes.Error, e.Error
	case e.MCP != nil && (e.MCP.IsError || e.MCP.ErrorCode != 0):
		return codes.Error, ""
	case e.Status >= 500:
		return codes.Error, ""
	}
	return codes.Unset, ""
}

func optStr(attrs []attribute.KeyValue, k attribute.Key, v string) []attribute.KeyValue {
	if v == "" {
		return attrs
	}
	return append(attrs, k.String(v))
}
