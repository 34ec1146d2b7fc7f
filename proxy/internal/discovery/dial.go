package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
)

// Reconnect bounds of the channel to the destination service: after an
// outage (destination scaled to zero, every replica replaced) the proxy is
// connected again within a few seconds of a replica answering.
const (
	reconnectBase       = 250 * time.Millisecond
	reconnectMax        = 2 * time.Second
	reconnectTimeoutMin = 5 * time.Second
)

// Dial returns the channel to the destination service at addr
// ("host:port"), with mesh TLS (tlsConfig names the service's identity).
//
// The name is resolved at every connection attempt rather than by gRPC's
// DNS resolver, which after a lookup with no addresses (a headless Service
// with no ready pod) backs off for up to two minutes and cannot be tuned;
// the attempts themselves back off from 250ms to 2s. Streams wait for the
// channel to be ready (see Client), so they resume as soon as it is.
func Dial(addr string, tlsConfig *tls.Config) (*grpc.ClientConn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("destination address %q: %w", addr, err)
	}
	return grpc.NewClient("passthrough:///"+addr, channelOptions(credentials.NewTLS(tlsConfig))...)
}

// channelOptions are the options of the channel to the destination
// service, with its transport credentials.
func channelOptions(creds credentials.TransportCredentials) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(dialResolved),
		grpc.WithDisableServiceConfig(),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: reconnectBase, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectMax},
			MinConnectTimeout: reconnectTimeoutMin,
		}),
	}
}

// dialResolved looks addr's host up now and connects to one of its
// addresses, in random order (the replicas of a headless Service share
// the proxies between them).
func dialResolved(ctx context.Context, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port of %q: %w", addr, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s has no addresses", host)
	}
	rand.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
	var d net.Dialer
	var errs []error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
