package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/component/clock"
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// IdleTimeout is how long a target no watch holds keeps its stream and
	// state (default 60s).
	IdleTimeout time.Duration
	// MaxTargets bounds the targets cached, per kind (endpoints, profiles)
	// (default 10000).
	MaxTargets int
	// MaxEndpointsPerTarget bounds a target's endpoint set; further adds are
	// dropped and logged (default 10000).
	MaxEndpointsPerTarget int
	// BackoffBase and BackoffMax bound the wait before a failed stream is
	// reopened: BackoffBase doubled per consecutive failure up to BackoffMax,
	// each wait drawn between half of that and all of it (defaults 250ms and
	// 3s). A stream opened while the channel is down waits for it to be
	// ready (grpc.WaitForReady), so these only space out streams the service
	// itself ends.
	BackoffBase, BackoffMax time.Duration
	// ResyncSettle is how long after the last add of a reopened stream's
	// initial burst the endpoints the new stream did not confirm are dropped
	// (default 1s).
	ResyncSettle time.Duration
	// Clock is the time source (default the system clock).
	Clock clock.Clock
}

// Default option values.
const (
	DefaultIdleTimeout           = 60 * time.Second
	DefaultMaxTargets            = 10000
	DefaultMaxEndpointsPerTarget = 10000
	DefaultBackoffBase           = 250 * time.Millisecond
	DefaultBackoffMax            = 3 * time.Second
	DefaultResyncSettle          = time.Second
)

// Validate reports options that are set but unusable.
func (o Options) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{
		"idle timeout": o.IdleTimeout, "backoff base": o.BackoffBase,
		"backoff max": o.BackoffMax, "resync settle": o.ResyncSettle,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	if o.MaxTargets < 0 {
		errs = append(errs, fmt.Errorf("max targets %d is negative", o.MaxTargets))
	}
	if o.MaxEndpointsPerTarget < 0 {
		errs = append(errs, fmt.Errorf("max endpoints per target %d is negative", o.MaxEndpointsPerTarget))
	}
	if o.BackoffBase > 0 && o.BackoffMax > 0 && o.BackoffBase > o.BackoffMax {
		errs = append(errs, fmt.Errorf("backoff base %v is above backoff max %v", o.BackoffBase, o.BackoffMax))
	}
	return errors.Join(errs...)
}

// withDefaults fills zero (and, defensively, invalid) values.
func (o Options) withDefaults() Options {
	dur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	dur(&o.IdleTimeout, DefaultIdleTimeout)
	dur(&o.BackoffBase, DefaultBackoffBase)
	dur(&o.BackoffMax, DefaultBackoffMax)
	dur(&o.ResyncSettle, DefaultResyncSettle)
	o.BackoffMax = max(o.BackoffMax, o.BackoffBase)
	if o.MaxTargets <= 0 {
		o.MaxTargets = DefaultMaxTargets
	}
	if o.MaxEndpointsPerTarget <= 0 {
		o.MaxEndpointsPerTarget = DefaultMaxEndpointsPerTarget
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	return o
}

// Errors in the Err field of refused watches.
var (
	// ErrTooManyTargets: Options.MaxTargets targets are cached and all are
	// in use. The watch says DoesNotExist, so the data path sends the
	// traffic to the original destination.
	ErrTooManyTargets = errors.New("discovery cache full: every cached target is in use")
	// ErrClosed: the Client is closed.
	ErrClosed = errors.New("discovery client closed")
)

// Client watches targets on the destination service. It is safe for
// concurrent use.
type Client struct {
	api   destinationv1.DestinationServiceClient
	token string
	log   logr.Logger
	opts  Options
	clock clock.Clock
	m     [numKinds]kindMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the stream goroutines

	mu      sync.Mutex
	closed  bool
	targets [numKinds]map[string]*entry
}

// New returns a Client that sends contextToken with its requests (may be "").
// Metrics are registered on reg (may be nil). Call Close to stop its streams.
func New(conn grpc.ClientConnInterface, contextToken string, log logr.Logger, reg prometheus.Registerer, opts Options) *Client {
	if err := opts.Validate(); err != nil {
		log.Info("Invalid discovery options replaced by defaults", "err", err)
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		api:    destinationv1.NewDestinationServiceClient(conn),
		token:  contextToken,
		log:    log,
		opts:   opts,
		clock:  opts.Clock,
		m:      newMetrics(reg),
		ctx:    ctx,
		cancel: cancel,
	}
	for k := range c.targets {
		c.targets[k] = map[string]*entry{}
	}
	return c
}

// Close stops every stream and waits for them to end. Watches keep their
// last snapshot; new watches are refused with ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		for k := range c.targets {
			for _, e := range c.targets[k] {
				e.stopIdleTimer()
			}
			c.m[k].targets.Sub(float64(len(c.targets[k])))
			clear(c.targets[k])
		}
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// entry is one cached target with its stream.
type entry struct {
	kind   kind
	target string
	cancel context.CancelFunc

	// Guarded by Client.mu.
	refs      int
	idleSince time.Time
	idleGen   uint64 // bumped whenever an idle timer is armed or disarmed
	stopIdle  func() bool
	detached  bool // a refused watch: not in the cache, no stream

	eps  cell[Snapshot]
	prof cell[profileState]
}

func (e *entry) stopIdleTimer() {
	if e.stopIdle != nil {
		e.stopIdle()
		e.stopIdle = nil
	}
	e.idleGen++
}

// cell holds a published value and the channel closed at the next change.
type cell[T any] struct {
	v       atomic.Pointer[T]
	mu      sync.Mutex
	changed chan struct{}
}

func (c *cell[T]) init(v *T) {
	c.v.Store(v)
	c.changed = make(chan struct{})
}

func (c *cell[T]) load() *T { return c.v.Load() }

func (c *cell[T]) changedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *cell[T]) publish(v *T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.v.Store(v)
	close(c.changed)
	c.changed = make(chan struct{})
}

// normalizeTarget lower-cases the host so that one target has one stream.
func normalizeTarget(t string) string { return strings.ToLower(t) }

// acquire returns the cached entry of the target with a reference taken,
// creating it and starting its stream if needed, or a detached entry that
// explains the refusal.
func (c *Client) acquire(k kind, target string) *entry {
	target = normalizeTarget(target)
	if err := validAuthority(target); err != nil {
		return c.refuse(k, target, err, reasonInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.refuse(k, target, ErrClosed, reasonClosed)
	}
	if e, ok := c.targets[k][target]; ok {
		e.refs++
		e.stopIdleTimer()
		return e
	}
	if len(c.targets[k]) >= c.opts.MaxTargets && !c.evictIdlestLocked(k) {
		return c.refuse(k, target, fmt.Errorf("%w (%d)", ErrTooManyTargets, c.opts.MaxTargets), reasonTooMany)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	e := &entry{kind: k, target: target, cancel: cancel, refs: 1}
	e.eps.init(&Snapshot{})
	e.prof.init(&profileState{})
	c.targets[k][target] = e
	c.m[k].targets.Inc()
	log := c.log.WithValues("target", target, "kind", k.String())
	var s streamer
	if k == kindEndpoints {
		s = &endpointsStream{c: c, e: e, log: log, set: newEndpointSet(c.opts.MaxEndpointsPerTarget)}
	} else {
		s = &profileStream{c: c, e: e, log: log}
	}
	c.wg.Go(func() { c.loop(ctx, e, s, log) })
	return e
}

func (c *Client) refuse(k kind, target string, err error, reason string) *entry {
	c.log.Info("Discovery watch refused", "target", target, "kind", k.String(), "err", err)
	c.m[k].refusals.WithLabelValues(reason).Inc()
	e := &entry{kind: k, target: target, detached: true}
	e.eps.init(&Snapshot{State: DoesNotExist, Err: err})
	e.prof.init(&profileState{err: err})
	return e
}

// release drops a reference; the last one arms the idle timer.
func (c *Client) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.detached || c.closed || c.targets[e.kind][e.target] != e {
		return
	}
	if e.refs--; e.refs > 0 {
		return
	}
	e.stopIdleTimer()
	e.idleSince = c.clock.Now()
	gen := e.idleGen
	e.stopIdle = c.clock.AfterFunc(c.opts.IdleTimeout, func() { c.expire(e, gen) })
}

// expire evicts e if it is still idle since the timer of generation gen was
// armed.
func (c *Client) expire(e *entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.targets[e.kind][e.target] != e || e.refs > 0 || e.idleGen != gen {
		return
	}
	c.log.V(1).Info("Evicting idle discovery target", "target", e.target, "kind", e.kind.String())
	c.evictLocked(e)
}

// evictIdlestLocked evicts the target of kind k idle for the longest, if any.
func (c *Client) evictIdlestLocked(k kind) bool {
	var oldest *entry
	for _, e := range c.targets[k] {
		if e.refs == 0 && (oldest == nil || e.idleSince.Before(oldest.idleSince)) {
			oldest = e
		}
	}
	if oldest == nil {
		return false
	}
	c.log.V(1).Info("Evicting idle discovery target to make room", "target", oldest.target, "kind", k.String())
	c.evictLocked(oldest)
	return true
}

func (c *Client) evictLocked(e *entry) {
	delete(c.targets[e.kind], e.target)
	e.stopIdleTimer()
	e.cancel()
	c.m[e.kind].evictions.Inc()
	c.m[e.kind].targets.Dec()
}

// streamer is the kind-specific part of a target's stream loop.
type streamer interface {
	// run opens one stream and reads it until it fails; gotAny reports
	// whether it delivered a message.
	run(ctx context.Context) (gotAny bool, err error)
	// broken marks the state stale after a failure.
	broken()
	// refused records that the server rejected the target for good.
	refused(err error)
	// stop disarms the stream's timers when the loop ends.
	stop()
}

// loop runs the target's streams until ctx ends, reopening them with backoff.
func (c *Client) loop(ctx context.Context, e *entry, s streamer, log logr.Logger) {
	defer s.stop()
	m := &c.m[e.kind]
	failures := 0
	for first := true; ; first = false {
		if !first {
			m.reconnects.Inc()
		}
		gotAny, err := s.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.InvalidArgument {
			log.Info("Destination service refused the target; sending its traffic to the original destination", "err", err)
			s.refused(err)
			return
		}
		s.broken()
		if gotAny {
			failures = 0
		}
		d := backoff(c.opts.BackoffBase, c.opts.BackoffMax, failures)
		failures++
		log.V(1).Info("Discovery stream ended; reopening", "err", err, "backoff", d)
		ch, stop := c.clock.NewTimer(d)
		select {
		case <-ch:
		case <-ctx.Done():
			stop()
			return
		}
	}
}

// backoff returns the wait after failures consecutive failures: base doubled
// per failure, capped at maxD, drawn from its upper half.
func backoff(base, maxD time.Duration, failures int) time.Duration {
	d := base
	for i := 0; i < failures && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	half := d / 2
	return half + rand.N(d-half+1)
}

// endpointsStream is the Get side of a target.
type endpointsStream struct {
	c   *Client
	e   *entry
	log logr.Logger

	mu         sync.Mutex // the set and publication; the settle timer runs apart
	set        *endpointSet
	stale      bool
	settleGen  uint64
	stopSettle func() bool
}

func (s *endpointsStream) publishLocked() { s.e.eps.publish(s.set.snapshot(s.stale)) }

func (s *endpointsStream) run(ctx context.Context) (bool, error) {
	m := &s.c.m[kindEndpoints]
	stream, err := s.c.api.Get(ctx, &destinationv1.GetRequest{Path: s.e.target, ContextToken: s.c.token}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	m.streamsOpen.Inc()
	defer m.streamsOpen.Dec()
	for gotAny := false; ; gotAny = true {
		msg, err := stream.Recv()
		if err != nil {
			return gotAny, err
		}
		m.updates.Inc()
		s.mu.Lock()
		if !gotAny {
			s.set.beginResync()
			s.stale = false
		}
		changed, problems := s.set.apply(msg)
		for _, p := range problems {
			s.log.Info("Ignoring invalid part of an endpoint update", "err", p)
		}
		m.invalid.Add(float64(len(problems)))
		s.disarmSettleLocked()
		if s.set.resyncing() {
			gen := s.settleGen
			s.stopSettle = s.c.clock.AfterFunc(s.c.opts.ResyncSettle, func() { s.settle(gen) })
		}
		if changed || !gotAny {
			s.publishLocked()
		}
		s.mu.Unlock()
	}
}

func (s *endpointsStream) disarmSettleLocked() {
	if s.stopSettle != nil {
		s.stopSettle()
		s.stopSettle = nil
	}
	s.settleGen++
}

// settle ends the resync the timer of generation gen was armed for.
func (s *endpointsStream) settle(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.settleGen {
		return
	}
	s.stopSettle = nil
	if s.set.endResync() {
		s.publishLocked()
	}
}

func (s *endpointsStream) broken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A resync cut short keeps everything: the next stream starts another.
	s.disarmSettleLocked()
	if !s.stale {
		s.stale = true
		s.publishLocked()
	}
}

func (s *endpointsStream) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disarmSettleLocked()
}

func (s *endpointsStream) refused(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disarmSettleLocked()
	s.e.eps.publish(&Snapshot{State: DoesNotExist, Err: fmt.Errorf("%w: %v", ErrInvalidTarget, status.Convert(err).Message())})
}

// profileState is what a ProfileWatch publishes.
type profileState struct {
	profile *Profile
	stale   bool
	err     error
}

// profileStream is the GetProfile side of a target.
type profileStream struct {
	c   *Client
	e   *entry
	log logr.Logger

	// Touched by the loop goroutine only.
	regexes regexCache
}

func (s *profileStream) run(ctx context.Context) (bool, error) {
	m := &s.c.m[kindProfile]
	stream, err := s.c.api.GetProfile(ctx, &destinationv1.GetProfileRequest{Path: s.e.target, ContextToken: s.c.token}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	m.streamsOpen.Inc()
	defer m.streamsOpen.Dec()
	for gotAny := false; ; gotAny = true {
		msg, err := stream.Recv()
		if err != nil {
			return gotAny, err
		}
		m.updates.Inc()
		pm := msg.GetProfile()
		if pm == nil {
			s.log.Info("Ignoring a profile update without a profile")
			m.invalid.Inc()
			continue
		}
		p, next, problems := profileFromProto(pm, s.regexes)
		s.regexes = next
		for _, p := range problems {
			s.log.Info("Ignoring invalid part of a profile", "err", p)
		}
		m.invalid.Add(float64(len(problems)))
		s.e.prof.publish(&profileState{profile: p})
	}
}

func (s *profileStream) broken() {
	if st := s.e.prof.load(); !st.stale {
		s.e.prof.publish(&profileState{profile: st.profile, stale: true})
	}
}

func (s *profileStream) stop() {}

func (s *profileStream) refused(err error) {
	s.e.prof.publish(&profileState{err: fmt.Errorf("%w: %v", ErrInvalidTarget, status.Convert(err).Message())})
}

// Watch is a reference to a target's endpoints.
type Watch struct {
	c        *Client
	e        *entry
	released atomic.Bool
}

// Endpoints returns a watch on the endpoints of target, a "host:port"
// authority ("web.ns.svc.cluster.local:80", "198.18.0.5:8080",
// "[2001:db8::1]:80"). Release it when done.
func (c *Client) Endpoints(target string) *Watch {
	return &Watch{c: c, e: c.acquire(kindEndpoints, target)}
}

// Snapshot returns the current state. It does not block.
func (w *Watch) Snapshot() Snapshot { return *w.e.eps.load() }

// Changed returns a channel closed at the next change of the snapshot after
// this call.
func (w *Watch) Changed() <-chan struct{} { return w.e.eps.changedCh() }

// Release drops the reference. Further calls do nothing.
func (w *Watch) Release() {
	if w.released.CompareAndSwap(false, true) {
		w.c.release(w.e)
	}
}

// ProfileWatch is a reference to a target's profile.
type ProfileWatch struct {
	c        *Client
	e        *entry
	released atomic.Bool
}

// Profile returns a watch on the profile of target (see Endpoints). Release
// it when done.
func (c *Client) Profile(target string) *ProfileWatch {
	return &ProfileWatch{c: c, e: c.acquire(kindProfile, target)}
}

// Snapshot returns the current profile: nil while none has arrived, or when
// the target was refused (see Err).
func (w *ProfileWatch) Snapshot() *Profile { return w.e.prof.load().profile }

// Stale reports whether the control plane is unreachable; Snapshot is then
// the last profile it sent.
func (w *ProfileWatch) Stale() bool { return w.e.prof.load().stale }

// Err says why there is no profile and will be none: the watch was refused
// (ErrTooManyTargets, ErrInvalidTarget, ErrClosed).
func (w *ProfileWatch) Err() error { return w.e.prof.load().err }

// Changed returns a channel closed at the next change after this call.
func (w *ProfileWatch) Changed() <-chan struct{} { return w.e.prof.changedCh() }

// Release drops the reference. Further calls do nothing.
func (w *ProfileWatch) Release() {
	if w.released.CompareAndSwap(false, true) {
		w.c.release(w.e)
	}
}
