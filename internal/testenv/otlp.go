package testenv

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is an OTLP/HTTP trace receiver on loopback, as a collector
// is: it decodes each POST /v1/traces (an ExportTraceServiceRequest
// protobuf) and keeps the spans. With Hang set it reads nothing and
// answers nothing until Release: a collector that accepts connections and
// never answers.
type OTLPReceiver struct {
	*httptest.Server
	hang    bool
	release chan struct{}
	relOnce sync.Once

	mu       sync.Mutex
	spans    []Span
	requests int
	header   http.Header   // the last export's
	changed  chan struct{} // closed and replaced when spans arrive
}

// Span is one received span, its ids in hex.
type Span struct {
	Name, TraceID, SpanID, Parent string
	Kind                          tracepb.Span_SpanKind
	Status                        tracepb.Status_StatusCode
	Start, End                    time.Time
	Attrs                         map[string]any // string, int64, float64, bool or []any
	Resource                      map[string]any
}

// Str is attribute k as a string ("" when absent or not a string).
func (s Span) Str(k string) string { v, _ := s.Attrs[k].(string); return v }

// StartOTLPReceiver serves a receiver on a free loopback port; hang makes
// it a dead one. Close it when done (Release first, for a hanging one).
func StartOTLPReceiver(hang bool) *OTLPReceiver {
	r := &OTLPReceiver{hang: hang, release: make(chan struct{}), changed: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// Endpoint is the receiver's base URL (what --otlp-endpoint takes).
func (r *OTLPReceiver) Endpoint() string { return r.URL }

// Release lets a hanging receiver's requests go (they get a 503).
func (r *OTLPReceiver) Release() { r.relOnce.Do(func() { close(r.release) }) }

// Requests is how many export requests arrived (hanging ones included).
func (r *OTLPReceiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Header is the last export request's header.
func (r *OTLPReceiver) Header() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header.Clone()
}

// Close releases a hanging receiver and stops it.
func (r *OTLPReceiver) Close() {
	r.Release()
	r.Server.Close()
}

func (r *OTLPReceiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	r.header = req.Header.Clone()
	r.mu.Unlock()
	if r.hang {
		select {
		case <-r.release:
		case <-req.Context().Done():
		}
		http.Error(w, "released", http.StatusServiceUnavailable)
		return
	}
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, fmt.Sprintf("want POST /v1/traces as application/x-protobuf, got %s %s %s", req.Method, req.URL.Path, req.Header.Get("Content-Type")), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range ex.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, Span{Name: sp.GetName(), TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					Parent: hex.EncodeToString(sp.GetParentSpanId()), Kind: sp.GetKind(), Status: sp.GetStatus().GetCode(),
					Start: time.Unix(0, int64(sp.GetStartTimeUnixNano())), End: time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Attrs: attrMap(sp.GetAttributes()), Resource: res})
			}
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Spans is every span received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// WaitSpan waits for a span that match accepts.
func (r *OTLPReceiver) WaitSpan(ctx context.Context, match func(Span) bool) (Span, error) {
	for {
		r.mu.Lock()
		for _, s := range r.spans {
			if match(s) {
				r.mu.Unlock()
				return s, nil
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Span{}, fmt.Errorf("no such span among the %d received: %w", len(r.Spans()), ctx.Err())
		}
	}
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	}
	return nil
}
