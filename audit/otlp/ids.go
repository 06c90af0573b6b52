package otlp

import (
	"context"
	"crypto/sha256"

	"go.opentelemetry.io/otel/trace"
)

// Ids are derived from event ids, never drawn at random: an event names
// its cause by event id (parent, caused_by, llm_turn), so the cause's
// span id is known to the child without the cause's span having been
// built, and the trace id is the root event's, known to every event that
// reaches the root (link.go). Event ids are unique per run and carry a
// random per-run prefix (audit.NewID), so derived ids do not collide
// between runs either. The hash is keyed by use so that a trace id and a
// span id of one event are unrelated.

// traceOf is the trace id of the trace rooted at event id.
func traceOf(id string) trace.TraceID {
	var t trace.TraceID
	sum := sha256.Sum256([]byte("agentg trace\x00" + id))
	copy(t[:], sum[:])
	if !t.IsValid() {
		t[len(t)-1] = 1 // all zeroes is "no trace"; chance is 2^-128
	}
	return t
}

// spanOf is the span id of event id's span.
func spanOf(id string) trace.SpanID {
	var s trace.SpanID
	sum := sha256.Sum256([]byte("agentg span\x00" + id))
	copy(s[:], sum[:])
	if !s.IsValid() {
		s[len(s)-1] = 1
	}
	return s
}

// idKey carries the ids the next span must get to the SDK's id
// generator, which is asked for them inside Tracer.Start.
type idKey struct{}

type spanIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

func withIDs(ctx context.Context, t trace.TraceID, s trace.SpanID) context.Context {
	return context.WithValue(ctx, idKey{}, spanIDs{t, s})
}

// derivedIDs is the SDK's IDGenerator: it hands out the ids withIDs put
// in the context. Only this package's goroutine starts spans on its
// tracer, always with ids in the context.
type derivedIDs struct{}

func (derivedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	ids, _ := ctx.Value(idKey{}).(spanIDs)
	return ids.trace, ids.span
}

func (derivedIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	ids, _ := ctx.Value(idKey{}).(spanIDs)
	return ids.span
}
