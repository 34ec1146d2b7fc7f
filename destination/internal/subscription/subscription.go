// Package subscription holds what every server-streaming RPC of destination
// shares: a bounded per-stream queue that its producer never waits on, and
// the loop that drains it onto the gRPC stream.
//
// A producer (a watcher) puts messages on a stream's Queue with TryPut; when
// the queue is full it calls Abort instead of waiting, and the stream ends
// with RESOURCE_EXHAUSTED so that its client reconnects and gets the whole
// state again. Nobody waits for a slow stream.
package subscription

import (
	"context"
	"errors"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Queue is one stream's bounded queue of messages, and a channel closed when
// the stream fell behind and must end.
type Queue[M any] struct {
	ch    chan M
	reset chan struct{}
	once  sync.Once
}

// NewQueue returns a queue that starts with initial and has room for size
// more messages.
func NewQueue[M any](size int, initial []M) *Queue[M] {
	q := &Queue[M]{ch: make(chan M, size+len(initial)), reset: make(chan struct{})}
	for _, m := range initial {
		q.ch <- m
	}
	return q
}

// C delivers the messages to send, in order.
func (q *Queue[M]) C() <-chan M { return q.ch }

// Reset is closed when the queue overflowed: the stream must end so that
// its client reconnects and gets the full state again.
func (q *Queue[M]) Reset() <-chan struct{} { return q.reset }

// TryPut queues m without waiting; it reports false when the queue is full
// (the caller then counts the overflow and calls Abort).
func (q *Queue[M]) TryPut(m M) bool {
	select {
	case q.ch <- m:
		return true
	default:
		return false
	}
}

// Abort tells the stream to end. It may be called more than once.
func (q *Queue[M]) Abort() {
	q.once.Do(func() { close(q.reset) })
}

// Counters are the metrics of one RPC's streams.
type Counters struct {
	Open prometheus.Gauge
	Sent prometheus.Counter
}

// Serve sends what q delivers with send until the client leaves (ctx),
// the server stops (stopping is closed: UNAVAILABLE, so that clients
// reconnect elsewhere) or the queue is reset (RESOURCE_EXHAUSTED).
func Serve[M any](ctx context.Context, stopping <-chan struct{}, c Counters, log logr.Logger, q *Queue[M], send func(M) error) error {
	c.Open.Inc()
	defer c.Open.Dec()
	for {
		// A reset wins over queued messages: the client will get the full
		// state again when it reconnects.
		select {
		case <-q.Reset():
			log.V(1).Info("stream reset: it fell behind")
			return status.Error(codes.ResourceExhausted, "stream fell behind its updates; reconnect for the current state")
		default:
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(context.Cause(ctx)).Err()
		case <-stopping:
			return status.Error(codes.Unavailable, "destination server is shutting down")
		case <-q.Reset():
			continue
		case m := <-q.C():
			if err := send(m); err != nil {
				if errors.Is(err, context.Canceled) {
					return status.FromContextError(err).Err()
				}
				return err
			}
			c.Sent.Inc()
		}
	}
}
