package server

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/policy"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
)

// Policy implements the inbound policy API: each WatchPort stream
// subscribes to the shared watcher of its pod's port.
type Policy struct {
	policyv1.UnimplementedInboundPolicyServiceServer

	log     logr.Logger
	index   *policy.Index
	metrics *metrics.Metrics

	stopOnce sync.Once
	stopping chan struct{}
}

// NewPolicy returns a Policy server over index.
func NewPolicy(log logr.Logger, index *policy.Index, m *metrics.Metrics) *Policy {
	return &Policy{log: log, index: index, metrics: m, stopping: make(chan struct{})}
}

// Register adds the service to g.
func (s *Policy) Register(g *grpc.Server) {
	policyv1.RegisterInboundPolicyServiceServer(g, s)
}

// Stop ends every open stream with UNAVAILABLE.
func (s *Policy) Stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// WatchPort streams the policy of one port of a pod.
func (s *Policy) WatchPort(req *policyv1.WatchPortRequest, stream grpc.ServerStreamingServer[policyv1.WatchPortResponse]) error {
	key, err := watchKey(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	log := s.log.WithValues("rpc", "WatchPort", "namespace", key.Namespace, "pod", key.Pod, "port", key.Port)
	sub, unsubscribe, err := s.index.Subscribe(key)
	if errors.Is(err, policy.ErrNoPod) {
		log.V(1).Info("no such pod")
		return status.Errorf(codes.NotFound, "no pod %s/%s", key.Namespace, key.Pod)
	}
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer unsubscribe()
	log.V(2).Info("stream opened")
	c := subscription.Counters{Open: s.metrics.StreamsOpen.WithLabelValues(metrics.RPCWatchPort), Sent: s.metrics.UpdatesSent.WithLabelValues(metrics.RPCWatchPort)}
	return subscription.Serve(stream.Context(), s.stopping, c, log, sub, func(m *policyv1.WatchPortResponse) error {
		if m == nil {
			return status.Errorf(codes.NotFound, "pod %s/%s was deleted", key.Namespace, key.Pod)
		}
		return stream.Send(m)
	})
}

func watchKey(req *policyv1.WatchPortRequest) (policy.Key, error) {
	pod := req.GetWorkload().GetPod()
	if pod == nil {
		return policy.Key{}, errors.New("workload: a pod is required")
	}
	if errs := validation.IsDNS1123Label(pod.GetNamespace()); len(errs) > 0 {
		return policy.Key{}, fmt.Errorf("pod namespace %q: %s", pod.GetNamespace(), strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(pod.GetName()); len(errs) > 0 {
		return policy.Key{}, fmt.Errorf("pod name %q: %s", pod.GetName(), strings.Join(errs, "; "))
	}
	if req.GetPort() < 1 || req.GetPort() > 65535 {
		return policy.Key{}, fmt.Errorf("port %d: want 1 to 65535", req.GetPort())
	}
	return policy.Key{Namespace: pod.GetNamespace(), Pod: pod.GetName(), Port: uint16(req.GetPort())}, nil
}
