// Package server serves the destination API over gRPC: each stream
// subscribes to the shared watcher of its target through a Source and
// sends what it queues, translated by package wire. The server knows
// neither how the state is computed nor its protobuf form.
package server

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	"github.com/linkerd-go/linkerd-go/destination/internal/discovery"
	"github.com/linkerd-go/linkerd-go/destination/internal/metrics"
	"github.com/linkerd-go/linkerd-go/destination/internal/subscription"
	"github.com/linkerd-go/linkerd-go/destination/internal/target"
	"github.com/linkerd-go/linkerd-go/destination/internal/wire"
)

// Source is the discovery state the server streams: the destination
// index (watch.Index) in the process, a fake in the server's tests. Each
// Subscribe returns a queue starting with the current state, then the
// changes, and the function that ends the subscription (call it once).
type Source interface {
	SubscribeEndpoints(t target.Target) (*subscription.Queue[*discovery.EndpointUpdate], func())
	SubscribeProfile(t target.Target, clientNS string) (*subscription.Queue[*discovery.Profile], func())
}

// Server implements DestinationService.
type Server struct {
	destinationv1.UnimplementedDestinationServiceServer

	log           logr.Logger
	index         Source
	metrics       *metrics.Metrics
	clusterDomain string

	stopOnce sync.Once
	stopping chan struct{}
}

// New returns a Server over index.
func New(log logr.Logger, index Source, m *metrics.Metrics, clusterDomain string) *Server {
	return &Server{log: log, index: index, metrics: m, clusterDomain: clusterDomain, stopping: make(chan struct{})}
}

// Register adds the service to g. Further APIs served from the same process
// (the inbound policy API) register beside it on the same grpc.Server.
func (s *Server) Register(g *grpc.Server) {
	destinationv1.RegisterDestinationServiceServer(g, s)
}

// Stop ends every open stream with UNAVAILABLE, so that clients reconnect
// elsewhere and a graceful gRPC stop can finish.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// Get streams the endpoints of a target.
func (s *Server) Get(req *destinationv1.GetRequest, stream grpc.ServerStreamingServer[destinationv1.GetResponse]) error {
	t, err := target.Parse(req.GetPath(), s.clusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	log := s.log.WithValues("rpc", "Get", "target", t.String())
	log.V(2).Info("stream opened")
	sub, unsubscribe := s.index.SubscribeEndpoints(t)
	defer unsubscribe()
	return serve(stream.Context(), s, metrics.RPCGet, log, sub, func(u *discovery.EndpointUpdate) error {
		for _, m := range wire.Endpoints(u) {
			if err := stream.Send(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetProfile streams the profile of a target.
func (s *Server) GetProfile(req *destinationv1.GetProfileRequest, stream grpc.ServerStreamingServer[destinationv1.GetProfileResponse]) error {
	t, err := target.Parse(req.GetPath(), s.clusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	log := s.log.WithValues("rpc", "GetProfile", "target", t.String())
	// The token is a hint: a malformed one is served as no token.
	tok, err := destinationv1.ParseContextToken(req.GetContextToken())
	if err != nil {
		log.V(1).Info("ignoring malformed context token", "err", err)
	}
	log.V(2).Info("stream opened", "namespace", tok.Namespace)
	sub, unsubscribe := s.index.SubscribeProfile(t, tok.Namespace)
	defer unsubscribe()
	return serve(stream.Context(), s, metrics.RPCGetProfile, log, sub, func(p *discovery.Profile) error {
		return stream.Send(wire.Profile(p))
	})
}

func serve[M any](ctx context.Context, s *Server, rpc string, log logr.Logger, sub *subscription.Queue[M], send func(M) error) error {
	c := subscription.Counters{Open: s.metrics.StreamsOpen.WithLabelValues(rpc), Sent: s.metrics.UpdatesSent.WithLabelValues(rpc)}
	return subscription.Serve(ctx, s.stopping, c, log, sub, send)
}
