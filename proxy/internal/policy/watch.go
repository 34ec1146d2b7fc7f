package policy

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/component/clock"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
)

// Config is how the Store watches.
type Config struct {
	// Namespace and Pod name this proxy's pod (LINKERD2_PROXY_POLICY_WORKLOAD).
	Namespace, Pod string
	// Default is the policy of every port until destination answers for it.
	Default *Port
	// Ports are watched from the start (the pod's container ports); any
	// other port is watched from its first connection.
	Ports []uint16
	// MaxPorts bounds the ports watched; a port beyond it keeps the default
	// policy (0: 256).
	MaxPorts int
	// BackoffBase and BackoffMax bound the wait between attempts after a
	// stream fails (0: 1s and 1m).
	BackoffBase, BackoffMax time.Duration
	// Clock is the time source (nil: the system clock).
	Clock clock.Clock
}

// Store holds the current policy of each inbound port and keeps it up to
// date from destination: one WatchPort stream per port, reopened with
// backoff when it ends. Until a port's first answer, and whenever its
// stream is broken, the port keeps the policy it had (the default at
// first): traffic is never decided on a half-known policy.
type Store struct {
	cfg    Config
	client policyv1.InboundPolicyServiceClient
	log    logr.Logger

	mu       sync.Mutex
	ctx      context.Context // set by Run; nil before
	ports    map[uint16]*watched
	overflow bool // logged that MaxPorts was reached

	updates *prometheus.CounterVec
	watched prometheus.Gauge

	// onUpdate, when set (tests), is called after each policy is stored.
	onUpdate func(port uint16, p *Port)
}

type watched struct {
	port    uint16
	current atomic.Pointer[Port]
	// discovered is closed when the first policy arrives (tests wait on it).
	discovered chan struct{}
	once       sync.Once
}

// NewStore returns a Store over client; call Run to start watching.
func NewStore(cfg Config, client policyv1.InboundPolicyServiceClient, reg prometheus.Registerer, log logr.Logger) *Store {
	if cfg.MaxPorts <= 0 {
		cfg.MaxPorts = 256
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real
	}
	s := &Store{
		cfg: cfg, client: client, log: log, ports: map[uint16]*watched{},
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbound_policy_updates_total",
			Help: "Inbound policy messages received from the policy service, by result (ok, or the gRPC code that ended a stream).",
		}, []string{"result"}),
		watched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inbound_policy_ports",
			Help: "Inbound ports whose policy is watched.",
		}),
	}
	reg.MustRegister(s.updates, s.watched)
	return s
}

// Port returns the current policy of port, starting its watch on first use.
func (s *Store) Port(port uint16) *Port {
	if w := s.watch(port); w != nil {
		return w.current.Load()
	}
	return s.cfg.Default
}

// Discovered returns a channel closed once port's first policy arrived
// (nil when the port is not watched).
func (s *Store) Discovered(port uint16) <-chan struct{} {
	if w := s.watch(port); w != nil {
		return w.discovered
	}
	return nil
}

func (s *Store) watch(port uint16) *watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.ports[port]; w != nil {
		return w
	}
	if len(s.ports) >= s.cfg.MaxPorts {
		if !s.overflow {
			s.overflow = true
			s.log.Info("too many inbound ports to watch; further ports keep the default policy", "max", s.cfg.MaxPorts, "port", port)
		}
		return nil
	}
	w := &watched{port: port, discovered: make(chan struct{})}
	w.current.Store(s.cfg.Default)
	s.ports[port] = w
	s.watched.Inc()
	if s.ctx != nil {
		go s.run(s.ctx, w)
	}
	return w
}

// Run watches the configured ports, and every port used later, until ctx
// ends.
func (s *Store) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	for _, w := range s.ports {
		go s.run(ctx, w)
	}
	s.mu.Unlock()
	for _, p := range s.cfg.Ports {
		s.watch(p)
	}
	<-ctx.Done()
	return nil
}

// run keeps w's stream open: on each failure it waits (backoff with
// jitter, reset by a stream that delivered something) and reopens it.
func (s *Store) run(ctx context.Context, w *watched) {
	log := s.log.WithValues("port", w.port)
	failures := 0
	for {
		delivered, err := s.stream(ctx, w)
		if ctx.Err() != nil {
			return
		}
		if delivered {
			failures = 0
		}
		code := status.Code(err)
		s.updates.WithLabelValues(code.String()).Inc()
		wait := identityclient.Backoff(failures, s.cfg.BackoffBase, s.cfg.BackoffMax, rand.Float64())
		failures++
		if code == codes.NotFound {
			// The pod is not known to destination yet (it has just
			// started): expected for a moment, so quieter.
			log.V(1).Info("policy not found yet; keeping the current policy", "retryIn", wait)
		} else {
			log.Info("policy stream ended; keeping the current policy", "err", err, "retryIn", wait)
		}
		fired, stop := s.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-fired:
		}
	}
}

// stream reads one WatchPort stream until it fails; delivered says whether
// it brought a policy.
func (s *Store) stream(ctx context.Context, w *watched) (delivered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.client.WatchPort(ctx, &policyv1.WatchPortRequest{
		Workload: &policyv1.Workload{Kind: &policyv1.Workload_Pod{Pod: &policyv1.Workload_PodRef{Namespace: s.cfg.Namespace, Name: s.cfg.Pod}}},
		Port:     uint32(w.port),
	})
	if err != nil {
		return false, err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return delivered, err
		}
		if resp.GetServer() == nil {
			continue // malformed: keep what we have
		}
		p := FromProto(resp.GetServer())
		w.current.Store(p)
		s.updates.WithLabelValues("ok").Inc()
		if !delivered {
			s.log.V(1).Info("policy discovered", "port", w.port, "server", p.Server.Name, "kind", p.Server.Kind)
		}
		delivered = true
		w.once.Do(func() { close(w.discovered) })
		if s.onUpdate != nil {
			s.onUpdate(w.port, p)
		}
	}
}
