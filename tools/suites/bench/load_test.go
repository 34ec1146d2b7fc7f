package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// The test server and the load generator on loopback: every protocol gets
// the planned number of requests, every one answered with ResponseSize
// bytes.
func TestLoadAgainstServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, hln, gln, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for _, c := range []struct {
		proto  Protocol
		target string
	}{
		{HTTP1, hln.Addr().String()},
		{H2C, hln.Addr().String()},
		{GRPC, gln.Addr().String()},
	} {
		t.Run(string(c.proto), func(t *testing.T) {
			spec := LoadSpec{Protocol: c.proto, Target: c.target, Rate: 200, Duration: 250 * time.Millisecond, Warmup: 50 * time.Millisecond, Timeout: 10 * time.Second}
			res, err := Load(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			// vegeta stops on elapsed time, so it may send one more or
			// less than planned; the gRPC generator sends exactly Count.
			want := Count(spec.Rate, spec.Duration)
			if res.Sent < want-1 || res.Sent > want+1 || (c.proto == GRPC && res.Sent != want) {
				t.Errorf("sent %d, want about %d", res.Sent, want)
			}
			if res.Errors != 0 || res.OK != res.Sent || len(res.Latencies) != res.OK {
				t.Errorf("%d ok, %d errors (%s), %d latencies of %d sent", res.OK, res.Errors, res.FirstError, len(res.Latencies), res.Sent)
			}
			if res.WarmupSent == 0 {
				t.Error("no warm-up")
			}
			for _, l := range res.Latencies {
				if l <= 0 {
					t.Fatalf("latency %v", l)
				}
			}
		})
	}
	if !strings.HasPrefix(out.String(), ServerReady) {
		t.Errorf("server printed %q", out.String())
	}
}

func TestLoadCountsFailures(t *testing.T) {
	// Nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, proto := range []Protocol{HTTP1, GRPC} {
		res, err := Load(context.Background(), LoadSpec{Protocol: proto, Target: addr, Rate: 100, Duration: 100 * time.Millisecond, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent == 0 || res.Errors != res.Sent || res.OK != 0 || res.FirstError == "" {
			t.Errorf("%s: %+v, want every request failed", proto, res)
		}
	}
}

func TestLoadUnknownProtocol(t *testing.T) {
	if _, err := Load(context.Background(), LoadSpec{Protocol: "smtp"}); err == nil {
		t.Error("unknown protocol accepted")
	}
}
