// Package redsyncotel is a redsync.Observer that traces and measures locks
// with OpenTelemetry: a span per Lock, Unlock and Extend (and per extension
// made by KeepAlive), with an event per attempt and per server reply, and
// metrics through the OpenTelemetry metric API.
//
// It lives in its own module, so that the root module does not depend on
// OpenTelemetry:
//
//	obs, err := redsyncotel.New() // the global TracerProvider and MeterProvider
//	if err != nil { ... }
//	rs := redsync.New(pools...)
//	rs.SetObserver(obs)
//
// To export Prometheus metrics too, combine observers with
// redsync.MultiObserver.
//
// # Spans
//
// Each operation is a span named "redsync.lock", "redsync.unlock",
// "redsync.extend" or "redsync.keepalive", a child of the span in the
// context given to the operation (LockContext and so on; for KeepAlive's
// extensions, the context given to KeepAlive). It carries the lock name
// (redsync.lock.name) and, when it ends, the outcome (redsync.outcome, see
// redsync.DoneEvent.Outcome) and, for a Lock, a Semaphore's Acquire or a
// MultiMutex's Lock with fencing, its token (redsync.fencing_token); a
// failed operation records its error and has
// the status Error. (A Semaphore's Acquire and Release are
// "redsync.acquire" and "redsync.release", a MultiMutex's Lock and Unlock
// "redsync.multilock" and "redsync.multiunlock", with node events but no
// attempts.) Its events:
//
//   - "redsync.node" per server reply: redsync.node (the server's index),
//     redsync.node.outcome, redsync.node.latency (seconds), redsync.attempt
//     for a Lock, and error.message for a failure. Replies that come after
//     the span ended (late ones) are in the metrics only.
//   - "redsync.attempt" per Lock attempt: redsync.attempt, redsync.try,
//     redsync.outcome, redsync.agreed and redsync.quorum, and
//     redsync.handed_over (true) for an attempt that took the lock from an
//     Unlock of the same process (its servers' replies are on that
//     Unlock's span).
//
// Operations talk to the servers with the span's context, so spans of an
// instrumented Redis client (for example go-redis' redisotel) nest under
// them. A lock found lost by KeepAlive adds the event "redsync.lock_lost"
// to the span of the context given to KeepAlive.
//
// # Metrics
//
//	redsync.operations           counter    {redsync.op, redsync.outcome}
//	redsync.operation.duration   histogram  s, {redsync.op, redsync.outcome}; for lock, the wait for the lock
//	redsync.lock.attempts        counter    {redsync.outcome}
//	redsync.lock.held            histogram  s, at Unlock
//	redsync.lock.validity        histogram  s, {redsync.op}, after a successful lock or extension
//	redsync.locks.lost           counter
//	redsync.node.replies         counter    {redsync.op, redsync.node, redsync.node.outcome}
//	redsync.node.latency         histogram  s, {redsync.op, redsync.node}
//
// The lock name (redsync.lock.name) is an attribute of the lock metrics
// only with WithNameAttribute, for cardinality: every name makes its own
// series.
package redsyncotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/quorumlock/redsync"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/quorumlock/redsync/contrib/otel"

// Attribute keys.
const (
	NameKey         = attribute.Key("redsync.lock.name")
	OpKey           = attribute.Key("redsync.op")
	OutcomeKey      = attribute.Key("redsync.outcome")
	TriesKey        = attribute.Key("redsync.tries")
	AttemptKey      = attribute.Key("redsync.attempt")
	TryKey          = attribute.Key("redsync.try")
	AgreedKey       = attribute.Key("redsync.agreed")
	QuorumKey       = attribute.Key("redsync.quorum")
	ValidityKey     = attribute.Key("redsync.validity")
	TokenKey        = attribute.Key("redsync.fencing_token")
	HandedOverKey   = attribute.Key("redsync.handed_over")
	NodeKey         = attribute.Key("redsync.node")
	NodeOutcomeKey  = attribute.Key("redsync.node.outcome")
	NodeLatencyKey  = attribute.Key("redsync.node.latency")
	ErrorMessageKey = attribute.Key("error.message")
)

// An Option configures New.
type Option func(*config)

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	nameAttribute  bool
}

// WithTracerProvider sets where spans go; the default is the global
// TracerProvider (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// WithMeterProvider sets where metrics go; the default is the global
// MeterProvider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithNameAttribute adds the lock name to the lock metrics. Leave it off
// (the default) when names are many: each name is a series of each metric.
// Spans always carry the name.
func WithNameAttribute() Option {
	return func(c *config) { c.nameAttribute = true }
}

// Observer is a redsync.Observer that makes spans and records metrics. It
// is safe for concurrent use by any number of Mutexes and Redsyncs.
type Observer struct {
	tracer        trace.Tracer
	nameAttribute bool

	operations  metric.Int64Counter
	durations   metric.Float64Histogram
	attempts    metric.Int64Counter
	held        metric.Float64Histogram
	validity    metric.Float64Histogram
	lost        metric.Int64Counter
	nodeReplies metric.Int64Counter
	nodeLatency metric.Float64Histogram
}

var _ redsync.Observer = (*Observer)(nil)

// Bucket boundaries, in seconds, of the histograms.
var (
	DurationBuckets    = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	NodeLatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	LeaseBuckets       = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900}
)

// New returns an Observer. It fails when the meter refuses an instrument.
func New(options ...Option) (*Observer, error) {
	c := config{}
	for _, o := range options {
		o(&c)
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	meter := c.meterProvider.Meter(ScopeName)
	o := &Observer{tracer: c.tracerProvider.Tracer(ScopeName), nameAttribute: c.nameAttribute}
	var err, e error
	o.operations, e = meter.Int64Counter("redsync.operations", metric.WithUnit("{operation}"),
		metric.WithDescription("Lock, Unlock and Extend calls, and extensions by KeepAlive (op keepalive), by outcome."))
	err = errors.Join(err, e)
	o.durations, e = meter.Float64Histogram("redsync.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Time taken by operations, by outcome; for lock, the wait for the lock."),
		metric.WithExplicitBucketBoundaries(DurationBuckets...))
	err = errors.Join(err, e)
	o.attempts, e = meter.Int64Counter("redsync.lock.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts to acquire a lock (one SET on every server), by outcome."))
	err = errors.Join(err, e)
	o.held, e = meter.Float64Histogram("redsync.lock.held", metric.WithUnit("s"),
		metric.WithDescription("How long locks were held, from the attempt that acquired them to Unlock."),
		metric.WithExplicitBucketBoundaries(LeaseBuckets...))
	err = errors.Join(err, e)
	o.validity, e = meter.Float64Histogram("redsync.lock.validity", metric.WithUnit("s"),
		metric.WithDescription("Time a lock was held for sure after it was acquired or extended."),
		metric.WithExplicitBucketBoundaries(LeaseBuckets...))
	err = errors.Join(err, e)
	o.lost, e = meter.Int64Counter("redsync.locks.lost", metric.WithUnit("{lock}"),
		metric.WithDescription("Locks kept alive by KeepAlive that could no longer be proven held."))
	err = errors.Join(err, e)
	o.nodeReplies, e = meter.Int64Counter("redsync.node.replies", metric.WithUnit("{reply}"),
		metric.WithDescription("Replies of each server (its index in the pools), by outcome; timeout: no reply within the per-server deadline; not_sent: not sent to a backlogged server."))
	err = errors.Join(err, e)
	o.nodeLatency, e = meter.Float64Histogram("redsync.node.latency", metric.WithUnit("s"),
		metric.WithDescription("Time each server took to reply."),
		metric.WithExplicitBucketBoundaries(NodeLatencyBuckets...))
	err = errors.Join(err, e)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// lockAttributes returns attrs, with the lock name when it is an attribute
// of the metrics.
func (o *Observer) lockAttributes(name string, attrs ...attribute.KeyValue) metric.MeasurementOption {
	if o.nameAttribute {
		attrs = append(attrs, NameKey.String(name))
	}
	return metric.WithAttributes(attrs...)
}

var spanNames = map[redsync.Op]string{
	redsync.OpLock:        "redsync.lock",
	redsync.OpUnlock:      "redsync.unlock",
	redsync.OpExtend:      "redsync.extend",
	redsync.OpKeepAlive:   "redsync.keepalive",
	redsync.OpAcquire:     "redsync.acquire",
	redsync.OpRelease:     "redsync.release",
	redsync.OpMultiLock:   "redsync.multilock",
	redsync.OpMultiUnlock: "redsync.multiunlock",
	redsync.OpRLock:       "redsync.rlock",
	redsync.OpRUnlock:     "redsync.runlock",
	redsync.OpRExtend:     "redsync.rextend",
	redsync.OpRWLock:      "redsync.rwlock",
	redsync.OpRWUnlock:    "redsync.rwunlock",
	redsync.OpRWExtend:    "redsync.rwextend",
	redsync.OpCampaign:    "redsync.campaign",
	redsync.OpResign:      "redsync.resign",
	redsync.OpProclaim:    "redsync.proclaim",
}

// acquires reports whether op acquires a lock in attempts (its events
// count tries and attempts).
func acquires(op redsync.Op) bool {
	switch op {
	case redsync.OpLock, redsync.OpRLock, redsync.OpRWLock, redsync.OpCampaign:
		return true
	}
	return false
}

// releases reports whether op releases a lock (its Done tells how long
// the lock was held).
func releases(op redsync.Op) bool {
	return op == redsync.OpUnlock || op == redsync.OpRUnlock || op == redsync.OpRWUnlock
}

// Start starts the operation's span and returns the context carrying it.
func (o *Observer) Start(ctx context.Context, e redsync.StartEvent) context.Context {
	attrs := []attribute.KeyValue{NameKey.String(e.Name), OpKey.String(e.Op.String())}
	if acquires(e.Op) {
		attrs = append(attrs, TriesKey.Int(e.Tries))
	}
	ctx, _ = o.tracer.Start(ctx, spanNames[e.Op], trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

// Attempt adds an event to the Lock's span and counts the attempt.
func (o *Observer) Attempt(ctx context.Context, e redsync.AttemptEvent) {
	outcome := e.Outcome()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{
			AttemptKey.Int(e.Attempt),
			TryKey.Int(e.Try),
			OutcomeKey.String(outcome),
			AgreedKey.Int(e.Agreed),
			QuorumKey.Int(e.Quorum),
		}
		if e.HandedOver {
			// The lock came from an Unlock of this process: its servers'
			// replies are on the Unlock's span.
			attrs = append(attrs, HandedOverKey.Bool(true))
		}
		span.AddEvent("redsync.attempt", trace.WithAttributes(attrs...))
	}
	o.attempts.Add(ctx, 1, o.lockAttributes(e.Name, OutcomeKey.String(outcome)))
}

// Node adds an event to the operation's span (while it has not ended),
// and counts the reply and records its latency.
func (o *Observer) Node(ctx context.Context, e redsync.NodeEvent) {
	op, outcome := e.Op.String(), e.Outcome.String()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{NodeKey.Int(e.Node), NodeOutcomeKey.String(outcome), NodeLatencyKey.Float64(e.Latency.Seconds())}
		if acquires(e.Op) && e.Op != redsync.OpCampaign {
			attrs = append(attrs, AttemptKey.Int(e.Attempt))
		}
		if e.Err != nil {
			attrs = append(attrs, ErrorMessageKey.String(e.Err.Error()))
		}
		span.AddEvent("redsync.node", trace.WithAttributes(attrs...))
	}
	o.nodeReplies.Add(ctx, 1, metric.WithAttributes(OpKey.String(op), NodeKey.Int(e.Node), NodeOutcomeKey.String(outcome)))
	if e.Outcome != redsync.NodeTimeout && e.Outcome != redsync.NodeNotSent {
		o.nodeLatency.Record(ctx, e.Latency.Seconds(), metric.WithAttributes(OpKey.String(op), NodeKey.Int(e.Node)))
	}
}

// Done ends the operation's span and records the operation.
func (o *Observer) Done(ctx context.Context, e redsync.DoneEvent) {
	op, outcome := e.Op.String(), e.Outcome()
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetAttributes(OutcomeKey.String(outcome))
		if acquires(e.Op) && e.Op != redsync.OpCampaign {
			span.SetAttributes(TriesKey.Int(e.Tries), AttemptKey.Int(e.Attempts))
		}
		if e.Validity > 0 {
			span.SetAttributes(ValidityKey.Float64(e.Validity.Seconds()))
		}
		if e.Token != 0 {
			// Tokens are far below 2^63 (microseconds since 1970).
			span.SetAttributes(TokenKey.Int64(int64(e.Token)))
		}
		if e.Err != nil {
			span.RecordError(e.Err)
			span.SetStatus(codes.Error, outcome)
		}
	}
	span.End()
	o.operations.Add(ctx, 1, o.lockAttributes(e.Name, OpKey.String(op), OutcomeKey.String(outcome)))
	o.durations.Record(ctx, e.Duration.Seconds(), o.lockAttributes(e.Name, OpKey.String(op), OutcomeKey.String(outcome)))
	if e.Validity > 0 {
		o.validity.Record(ctx, e.Validity.Seconds(), o.lockAttributes(e.Name, OpKey.String(op)))
	}
	if releases(e.Op) && e.Held > 0 {
		o.held.Record(ctx, e.Held.Seconds(), o.lockAttributes(e.Name))
	}
}

// Lost adds an event to the span of the context given to KeepAlive, and
// counts the lost lock.
func (o *Observer) Lost(ctx context.Context, e redsync.LostEvent) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("redsync.lock_lost", trace.WithAttributes(NameKey.String(e.Name), ErrorMessageKey.String(e.Cause.Error())))
	}
	o.lost.Add(ctx, 1, o.lockAttributes(e.Name))
}
