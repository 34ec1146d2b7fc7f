package forward

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// Limits bound the work one side of the proxy takes on. Work beyond a limit
// is refused at once (load shedding) rather than queued.
type Limits struct {
	// MaxInFlight bounds the HTTP requests waiting for their response's
	// headers, as Linkerd's max-in-flight does: a request past it is
	// answered 503 with l5d-proxy-error at once. A streaming response stops
	// counting once its headers are sent.
	MaxInFlight int
	// MaxConnections bounds the accepted connections open at once (HTTP
	// and opaque): one past it is closed (reset) as soon as it is accepted.
	MaxConnections int
	// HTTP2MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS the
	// side's HTTP/2 server advertises to each client connection.
	HTTP2MaxConcurrentStreams int
}

// DefaultMaxInFlight, DefaultMaxConnections and
// DefaultHTTP2MaxConcurrentStreams are the limits of a side unless
// configured: a sidecar's memory stays flat under overload (a pending
// request costs tens of KiB in the proxy).
const (
	DefaultMaxInFlight               = 1000
	DefaultMaxConnections            = 4096
	DefaultHTTP2MaxConcurrentStreams = 250
)

// WithDefaults returns l with every zero limit set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxInFlight == 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.HTTP2MaxConcurrentStreams == 0 {
		l.HTTP2MaxConcurrentStreams = DefaultHTTP2MaxConcurrentStreams
	}
	return l
}

// Descriptors the limits are budgeted in: an accepted connection holds its
// own and, while it is forwarded, one towards where it goes (opaque TCP,
// or the HTTP connection its requests take); the reserve covers the
// listeners, the control plane's connections, admin clients and files.
const (
	descriptorsPerConnection = 2
	descriptorReserve        = 256
)

// FitFileLimit lowers the MaxConnections of each side so that every
// connection the sides admit, with the one the proxy opens for it, fits in
// the process's file limit (RLIMIT_NOFILE): past it, accept and connect
// fail with EMFILE. It returns the budget needed before any change, and
// whether it lowered a limit. Limits must have their defaults set.
func FitFileLimit(nofile uint64, sides ...*Limits) (needed uint64, lowered bool) {
	needed = descriptorReserve
	for _, l := range sides {
		needed += uint64(l.MaxConnections) * descriptorsPerConnection
	}
	if needed <= nofile || len(sides) == 0 {
		return needed, false
	}
	perSide := 1
	if nofile > descriptorReserve {
		perSide = max(1, int((nofile-descriptorReserve)/descriptorsPerConnection/uint64(len(sides))))
	}
	for _, l := range sides {
		if l.MaxConnections > perSide {
			l.MaxConnections = perSide
			lowered = true
		}
	}
	return needed, lowered
}

// ErrOverloaded is the l5d-proxy-error of a request refused by
// MaxInFlight (Linkerd's wording).
const ErrOverloaded = "proxy max-concurrency exhausted"

// Limiter enforces one side's Limits, counts what it refuses and logs it at
// debug level, at most once per second per kind.
type Limiter struct {
	limits          Limits
	log             logr.Logger
	requests, conns bound

	loops, acceptErrs rateLog
	loopCount         prometheus.Counter     // nil: no metrics
	acceptErrCount    *prometheus.CounterVec // nil: no metrics
}

// NewLimiter returns a limiter of l; a limit of 0 or less is unlimited
// (see Limits.WithDefaults). load may be nil (no metrics).
func NewLimiter(l Limits, load *metrics.Load, log logr.Logger) *Limiter {
	lim := &Limiter{limits: l, log: log}
	lim.requests = bound{max: l.MaxInFlight, msg: "HTTP request refused: too many requests in flight", key: "maxInFlight"}
	lim.conns = bound{max: l.MaxConnections, msg: "connection refused: too many open connections", key: "maxConnections"}
	if load != nil {
		lim.requests.open, lim.requests.shed = load.PendingRequests, load.ShedRequests
		lim.conns.open, lim.conns.shed = load.OpenConnections, load.ShedConnections
		lim.loopCount, lim.acceptErrCount = load.Loops, load.AcceptErrors
	}
	return lim
}

// Connections returns the accepted connections open now and the most that
// were open at once since the last call.
func (l *Limiter) Connections() (open, peak int) {
	n := l.conns.n.Load()
	return int(n), int(max(l.conns.peak.Swap(n), n))
}

// RefuseLoop counts and logs a connection refused because its target is
// one of the proxy's own listeners. Such a connection is a client's doing
// (sent to the proxy's port on purpose) or a misconfigured redirection,
// so it is logged at info level, at most once per second.
func (l *Limiter) RefuseLoop(client, target string) {
	if l.loopCount != nil {
		l.loopCount.Inc()
	}
	l.loops.noteAt(l.log, 0, "connection refused: its target is one of the proxy's own listeners", "client", client, "target", target)
}

// acceptFailed counts and logs a failed accept, at most once per second.
func (l *Limiter) acceptFailed(err error) {
	if l.acceptErrCount != nil {
		l.acceptErrCount.WithLabelValues(Errno(err)).Inc()
	}
	l.acceptErrs.noteAt(l.log, 0, "accept failed; retrying after a backoff", "err", err)
}

// Limits returns the limits enforced.
func (l *Limiter) Limits() Limits { return l.limits }

// bound is one limit: what is held now, its gauge, and the refusals.
type bound struct {
	n        atomic.Int64
	peak     atomic.Int64 // highest n since TakePeak
	max      int
	open     prometheus.Gauge   // nil: no metrics
	shed     prometheus.Counter // nil: no metrics
	refused  rateLog
	msg, key string
}

// enter takes a place, or reports that none is left (the refusal is
// counted and logged).
func (b *bound) enter(log logr.Logger) bool {
	n := b.n.Add(1)
	if b.max > 0 && n > int64(b.max) {
		b.n.Add(-1)
		if b.shed != nil {
			b.shed.Inc()
		}
		b.refused.note(log, b.msg, b.key, b.max)
		return false
	}
	if b.open != nil {
		b.open.Inc()
	}
	for p := b.peak.Load(); n > p && !b.peak.CompareAndSwap(p, n); p = b.peak.Load() {
	}
	return true
}

func (b *bound) leave() {
	b.n.Add(-1)
	if b.open != nil {
		b.open.Dec()
	}
}

// Slot is an accepted connection's place under MaxConnections. It is
// released once: when the side's handler is done with the connection, or,
// for a connection handed to the HTTP server, when the server is.
type Slot struct {
	l    *Limiter
	once sync.Once
	kept atomic.Bool // handed to the HTTP server, which releases it
}

// acceptConn takes a slot for an accepted connection, or reports that
// none is left.
func (l *Limiter) acceptConn() (*Slot, bool) {
	if !l.conns.enter(l.log) {
		return nil, false
	}
	return &Slot{l: l}, true
}

// Release gives the slot back; later calls do nothing. A nil slot is
// ignored.
func (s *Slot) Release() {
	if s == nil {
		return
	}
	s.once.Do(s.l.conns.leave)
}

// refuse closes a connection refused by MaxConnections with a reset, so
// the client fails at once and the proxy keeps no TIME_WAIT state.
func refuse(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// rateLog logs a refusal at debug level at most once per second, with the
// number of refusals since the last line.
type rateLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line
	skipped atomic.Int64
}

func (r *rateLog) note(log logr.Logger, msg string, kv ...any) {
	r.noteAt(log, 1, msg, kv...)
}

// noteAt logs at verbosity v, at most once per second.
func (r *rateLog) noteAt(log logr.Logger, v int, msg string, kv ...any) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(time.Second) || !r.last.CompareAndSwap(last, now) {
		r.skipped.Add(1)
		return
	}
	log.V(v).Info(msg, append(kv, "refusedSinceLastLine", r.skipped.Swap(0)+1)...)
}

// limitHandler sheds requests past MaxInFlight and holds a place for each
// admitted one until its response's headers are written.
type limitHandler struct {
	next http.Handler
	l    *Limiter
}

func (h limitHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.l.requests.enter(h.l.log) {
		WriteFailure(w, r, FailOverloaded)
		return
	}
	pw := &pendingWriter{ResponseWriter: w, l: h.l}
	defer pw.done()
	h.next.ServeHTTP(pw, r)
}

// pendingWriter gives the request's place back when the response's final
// headers go out (or the connection is taken over, or the handler ends).
type pendingWriter struct {
	http.ResponseWriter
	l        *Limiter
	released atomic.Bool
}

func (w *pendingWriter) done() {
	if !w.released.Load() && w.released.CompareAndSwap(false, true) {
		w.l.requests.leave()
	}
}

func (w *pendingWriter) WriteHeader(status int) {
	if status >= 200 || status == http.StatusSwitchingProtocols {
		w.done()
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *pendingWriter) Write(p []byte) (int, error) {
	w.done()
	return w.ResponseWriter.Write(p)
}

// FlushError sends the headers (200 unless set) and what is buffered.
func (w *pendingWriter) FlushError() error {
	w.done()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over (a protocol switch).
func (w *pendingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.done()
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *pendingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
