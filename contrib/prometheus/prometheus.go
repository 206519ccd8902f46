// Package redsyncprom is a redsync.Observer that exports Prometheus
// metrics: how often locks are taken and refused, how long callers wait
// and hold them, how each Redis server answers, and how many locks kept
// alive were lost.
//
// It lives in its own module, so that the root module does not depend on
// the Prometheus client:
//
//	obs, err := redsyncprom.New(prometheus.DefaultRegisterer)
//	if err != nil { ... }
//	rs := redsync.New(pools...)
//	rs.SetObserver(obs)
//
// # Metrics
//
// With the default namespace "redsync":
//
//	redsync_operations_total{op,outcome}                   counter
//	redsync_operation_duration_seconds{op,outcome}         histogram (op="lock": the wait for the lock)
//	redsync_lock_attempts_total{outcome}                   counter
//	redsync_lock_held_seconds                              histogram (observed at Unlock, RUnlock)
//	redsync_lock_validity_seconds{op}                      histogram (after a successful lock or extension)
//	redsync_locks_lost_total                               counter
//	redsync_node_replies_total{op,node,outcome}            counter
//	redsync_node_latency_seconds{op,node}                  histogram
//
// op is "lock", "unlock", "extend" or "keepalive" (an extension made by
// KeepAlive); outcome is redsync.DoneEvent.Outcome for operations and
// attempts ("ok", "taken", "canceled", "expired", "not_held", "failed"),
// and redsync.NodeOutcome for servers ("ok", "refused", "expired", "error",
// "timeout", "not_sent"); node is the server's index in the pools given to
// redsync.New. A server's late replies (those that came after its
// operation was decided) count like the others; a server that missed the
// deadline counts once as "timeout" and once more with its reply, if one
// comes. Neither a timeout nor a request not sent to a backlogged server
// ("not_sent") has a latency.
//
// The lock name is a label of the lock metrics (all but the node ones)
// only with WithNameLabel: every name makes its own time series, so it
// suits a few fixed names, not names made per request.
package redsyncprom

import (
	"context"
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumlock/redsync"
)

// DurationBuckets are the buckets of redsync_operation_duration_seconds.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NodeLatencyBuckets are the buckets of redsync_node_latency_seconds.
var NodeLatencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// LeaseBuckets are the buckets of redsync_lock_held_seconds and
// redsync_lock_validity_seconds.
var LeaseBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900}

// An Option configures New.
type Option func(*config)

type config struct {
	namespace string
	nameLabel bool
}

// WithNamespace sets the prefix of every metric name; the default is
// "redsync".
func WithNamespace(namespace string) Option {
	return func(c *config) { c.namespace = namespace }
}

// WithNameLabel adds the lock name as the label "name" to the lock
// metrics. Leave it off (the default) when names are many, for example
// made from request data: each name is a time series of each metric.
func WithNameLabel() Option {
	return func(c *config) { c.nameLabel = true }
}

// Observer is a redsync.Observer that updates Prometheus metrics. It is
// safe for concurrent use by any number of Mutexes and Redsyncs.
type Observer struct {
	nameLabel bool

	operations  *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	attempts    *prometheus.CounterVec
	held        *prometheus.HistogramVec
	validity    *prometheus.HistogramVec
	lost        *prometheus.CounterVec
	nodeReplies *prometheus.CounterVec
	nodeLatency *prometheus.HistogramVec
}

var _ redsync.Observer = (*Observer)(nil)

// New returns an Observer whose metrics are registered on reg. It fails
// when reg is nil, or when reg refuses a metric (one of the same name is
// registered already: give each Observer on one registry its own
// namespace); it then leaves nothing registered.
func New(reg prometheus.Registerer, options ...Option) (*Observer, error) {
	if reg == nil {
		return nil, errors.New("redsyncprom: New was given a nil Registerer; pass prometheus.DefaultRegisterer or a registry of your own")
	}
	c := config{namespace: "redsync"}
	for _, o := range options {
		o(&c)
	}
	var lockLabels []string
	if c.nameLabel {
		lockLabels = []string{"name"}
	}
	with := func(labels ...string) []string {
		return append(labels, lockLabels...)
	}
	o := &Observer{
		nameLabel: c.nameLabel,
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace,
			Name:      "operations_total",
			Help:      "Lock, Unlock and Extend calls, and extensions by KeepAlive (op=keepalive), by outcome.",
		}, with("op", "outcome")),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.namespace,
			Name:      "operation_duration_seconds",
			Help:      "Time taken by operations, by outcome; for op=lock, the wait for the lock.",
			Buckets:   DurationBuckets,
		}, with("op", "outcome")),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace,
			Name:      "lock_attempts_total",
			Help:      "Attempts to acquire a lock (one SET on every server), by outcome.",
		}, with("outcome")),
		held: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.namespace,
			Name:      "lock_held_seconds",
			Help:      "How long locks were held, from the attempt that acquired them to Unlock.",
			Buckets:   LeaseBuckets,
		}, with()),
		validity: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.namespace,
			Name:      "lock_validity_seconds",
			Help:      "Time a lock was held for sure after it was acquired or extended.",
			Buckets:   LeaseBuckets,
		}, with("op")),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace,
			Name:      "locks_lost_total",
			Help:      "Locks kept alive by KeepAlive that could no longer be proven held.",
		}, with()),
		nodeReplies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace,
			Name:      "node_replies_total",
			Help:      "Replies of each server (node: its index in the pools), by outcome; timeout: no reply within the per-server deadline; not_sent: not sent to a backlogged server.",
		}, []string{"op", "node", "outcome"}),
		nodeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.namespace,
			Name:      "node_latency_seconds",
			Help:      "Time each server took to reply (node: its index in the pools).",
			Buckets:   NodeLatencyBuckets,
		}, []string{"op", "node"}),
	}
	collectors := []prometheus.Collector{o.operations, o.durations, o.attempts, o.held, o.validity, o.lost, o.nodeReplies, o.nodeLatency}
	for i, col := range collectors {
		if err := reg.Register(col); err != nil {
			for _, registered := range collectors[:i] {
				reg.Unregister(registered)
			}
			return nil, err
		}
	}
	return o, nil
}

// labels returns values followed by the lock name when it is a label.
func (o *Observer) labels(name string, values ...string) []string {
	if o.nameLabel {
		return append(values, name)
	}
	return values
}

// Start returns ctx: metrics need nothing carried from start to end.
func (o *Observer) Start(ctx context.Context, _ redsync.StartEvent) context.Context {
	return ctx
}

// Attempt counts the attempt by outcome.
func (o *Observer) Attempt(_ context.Context, e redsync.AttemptEvent) {
	o.attempts.WithLabelValues(o.labels(e.Name, e.Outcome())...).Inc()
}

// Node counts the server's reply and records its latency.
func (o *Observer) Node(_ context.Context, e redsync.NodeEvent) {
	op, node := e.Op.String(), nodeLabel(e.Node)
	o.nodeReplies.WithLabelValues(op, node, e.Outcome.String()).Inc()
	if e.Outcome != redsync.NodeTimeout && e.Outcome != redsync.NodeNotSent {
		o.nodeLatency.WithLabelValues(op, node).Observe(e.Latency.Seconds())
	}
}

// Done counts the operation and records its duration, and the lock's
// validity or the time it was held.
func (o *Observer) Done(_ context.Context, e redsync.DoneEvent) {
	op, outcome := e.Op.String(), e.Outcome()
	o.operations.WithLabelValues(o.labels(e.Name, op, outcome)...).Inc()
	o.durations.WithLabelValues(o.labels(e.Name, op, outcome)...).Observe(e.Duration.Seconds())
	if e.Validity > 0 {
		o.validity.WithLabelValues(o.labels(e.Name, op)...).Observe(e.Validity.Seconds())
	}
	if (e.Op == redsync.OpUnlock || e.Op == redsync.OpRUnlock || e.Op == redsync.OpRWUnlock) && e.Held > 0 {
		o.held.WithLabelValues(o.labels(e.Name)...).Observe(e.Held.Seconds())
	}
}

// Lost counts the lost lock.
func (o *Observer) Lost(_ context.Context, e redsync.LostEvent) {
	o.lost.WithLabelValues(o.labels(e.Name)...).Inc()
}

// nodeLabels are the labels of the first servers, made once.
var nodeLabels = func() []string {
	labels := make([]string, 16)
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	return labels
}()

func nodeLabel(node int) string {
	if node >= 0 && node < len(nodeLabels) {
		return nodeLabels[node]
	}
	return strconv.Itoa(node)
}
