package identity

import (
	"context"
	"errors"
	mathrand "math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/component/identityclient"
	"github.com/linkerd-go/linkerd-go/tools/testkit/clocktest"
)

func unavailable(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	return nil, status.Error(codes.Unavailable, "no issuer loaded")
}

// A pod started while identity is down: over two minutes of failures every
// retry comes within the cap of a proxy without a certificate, and the
// first attempt after identity answers again installs the certificate.
func TestRetryScheduleOverAnOutage(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.client.jitter = mathrand.Float64 // any jitter keeps the bounds
	h.fake.setRespond(unavailable)
	h.start()
	start := h.clk.Now()
	failures := 0
	var tm *clocktest.Timer
	for {
		tm = h.nextTimer() // the attempt before it has failed
		failures++
		if tm.D > DefaultUncertifiedBackoffMax || tm.D < DefaultBackoffBase/2 {
			t.Fatalf("retry %d in %v, want within [%v, %v]", failures, tm.D, DefaultBackoffBase/2, DefaultUncertifiedBackoffMax)
		}
		if h.store.HasCertificate() {
			t.Fatal("certificate from a failed attempt")
		}
		if h.clk.Now().Add(tm.D).Sub(start) >= 2*time.Minute {
			break
		}
		tm.Fire()
	}
	// identity answers again from the last failure on.
	h.fake.setRespond(signCSR(t, h.pki.issuer, time.Hour, ""))
	back := h.clk.Now()
	tm.Fire()
	tm = h.nextTimer()
	if !h.store.HasCertificate() {
		t.Fatal("the first attempt after identity returned got no certificate")
	}
	if got := h.clk.Now().Sub(back); got > DefaultUncertifiedBackoffMax {
		t.Errorf("certificate %v after identity returned, want at most %v", got, DefaultUncertifiedBackoffMax)
	}
	h.checkMetrics(1, float64(failures), tm.D)
	if n := len(h.fake.requests()); n != failures+1 {
		t.Errorf("%d Certify calls, want %d", n, failures+1)
	}
	// Two minutes of retries at most 2s apart.
	if least := int(2 * time.Minute / DefaultUncertifiedBackoffMax); failures < least {
		t.Errorf("%d attempts in two minutes, want at least %d", failures, least)
	}
}

// A proxy holding a valid certificate retries more slowly, up to
// BackoffMax, never past that certificate's expiry; once it has expired the
// proxy retries as one without a certificate.
func TestRetryScheduleWithACertificate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.setRespond(signCSR(t, h.pki.issuer, 10*time.Minute, ""))
	h.start()
	tm := h.nextTimer()
	expiry := leafOf(t, h.store).NotAfter
	h.fake.setRespond(unavailable)
	sawMax, sawClipped := false, false
	for {
		tm.Fire()
		tm = h.nextTimer()
		now := h.clk.Now()
		if !now.Before(expiry) {
			break
		}
		left := expiry.Sub(now)
		switch {
		case tm.D > DefaultBackoffMax || tm.D > left:
			t.Fatalf("retry in %v with %v of validity left, want at most %v and never past the expiry", tm.D, left, DefaultBackoffMax)
		case tm.D == left:
			sawClipped = true
		case tm.D == DefaultBackoffMax:
			sawMax = true
		}
	}
	if !sawMax || !sawClipped {
		t.Errorf("the schedule never reached BackoffMax (%v) or never stopped at the expiry (%v)", sawMax, sawClipped)
	}
	// Expired: the uncertified cap, from the backoff reached so far.
	if tm.D != DefaultUncertifiedBackoffMax {
		t.Errorf("first retry after the certificate expired in %v, want %v", tm.D, DefaultUncertifiedBackoffMax)
	}
}

// The real path: identity's port resets every connection for a while (the
// service down), then serves. Each failed attempt is one new connection,
// every retry is within the cap, and the first attempt after the service
// is back gets the certificate: nothing of gRPC's connection backoff holds
// the client back.
func TestCertifiesOnTheFirstAttemptAfterIdentityReturns(t *testing.T) {
	h := newHarness(t, harnessOpts{gated: true})
	h.start()
	const down = 6 // attempts while identity is down
	for i := 1; i <= down; i++ {
		tm := h.nextTimer()
		h.gate.waitRefused(t)
		if tm.D > DefaultUncertifiedBackoffMax || tm.D <= 0 {
			t.Errorf("retry %d in %v, want within (0, %v]", i, tm.D, DefaultUncertifiedBackoffMax)
		}
		if h.store.HasCertificate() || len(h.fake.requests()) != 0 {
			t.Fatal("a call reached the service behind the closed gate")
		}
		if i == down {
			h.gate.open.Store(true)
		}
		tm.Fire()
	}
	tm := h.nextTimer()
	if !h.store.HasCertificate() {
		t.Fatal("the first attempt after identity returned got no certificate")
	}
	if n := len(h.fake.requests()); n != 1 {
		t.Errorf("%d Certify calls, want 1", n)
	}
	h.checkMetrics(1, down, tm.D)
}

// Every call resolves the service's name afresh (a headless Service scaled
// to zero resolves to nothing until identity is back).
func TestConnResolvesEveryCall(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.fake.setRespond(func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
		return nil, status.Error(codes.InvalidArgument, "no CSR")
	})
	r := manual.NewBuilderWithScheme("identity-test")
	var builds atomic.Int32
	r.BuildCallback = func(resolver.Target, resolver.ClientConn, resolver.BuildOptions) { builds.Add(1) }
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: h.addr}}})
	conn, err := identityclient.Dial("identity-test:///identity", identityName, h.store.Roots, grpc.WithResolvers(r))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	svc := identityv1.NewIdentityServiceClient(conn)
	before := builds.Load()
	for i := int32(1); i <= 3; i++ {
		if _, err := svc.Certify(context.Background(), &identityv1.CertifyRequest{}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("call %d: %v, want the service's InvalidArgument", i, err)
		}
		if got := builds.Load() - before; got != i {
			t.Fatalf("%d resolutions for %d calls", got, i)
		}
	}
	if _, err := conn.NewStream(context.Background(), &grpc.StreamDesc{}, "/x"); status.Code(err) != codes.Unimplemented {
		t.Errorf("NewStream: %v", err)
	}
	_ = conn.Close()
	if _, err := svc.Certify(context.Background(), &identityv1.CertifyRequest{}); status.Code(err) != codes.Canceled {
		t.Errorf("a call after Close: %v, want Canceled", err)
	}
}

// An operator sees each failure with the time of the next attempt: the
// first at once, a different error at once, the same error again at most
// every failureLogEvery with the count it stands for; then the recovery.
func TestFailureLog(t *testing.T) {
	rec := &recorder{}
	h := newHarness(t, harnessOpts{log: rec})
	h.fake.setRespond(unavailable)
	h.start()
	// jitter 0, failures at 0, 0.5s, 1.5s, 3.5s, then every 2s: the same
	// error is logged again at 11.5s (8th failure) and 21.5s (13th).
	for i := 1; i <= 12; i++ {
		h.nextTimer().Fire()
	}
	tm := h.nextTimer() // after the 13th failure
	h.fake.setRespond(func(context.Context, *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
		return nil, status.Error(codes.Unauthenticated, "token refused")
	})
	tm.Fire() // the 14th fails with another error
	tm = h.nextTimer()
	h.fake.setRespond(signCSR(t, h.pki.issuer, time.Hour, ""))
	tm.Fire()
	h.nextTimer()
	h.stop()

	var failed []logLine
	var installed, stopped *logLine
	for _, l := range rec.all() {
		switch l.msg {
		case "certification failed":
			failed = append(failed, l)
		case "certificate installed":
			installed = &l
		case "identity client stopped":
			stopped = &l
		}
	}
	want := []struct {
		failures, suppressed int
		code                 codes.Code
	}{{1, 0, codes.Unavailable}, {8, 6, codes.Unavailable}, {13, 4, codes.Unavailable}, {14, 0, codes.Unauthenticated}}
	if len(failed) != len(want) {
		t.Fatalf("%d failure lines, want %d: %v", len(failed), len(want), failed)
	}
	for i, w := range want {
		l := failed[i]
		if l.kv["failures"] != w.failures || status.Code(errors.Unwrap(l.err)) != w.code {
			t.Errorf("line %d: failures %v error %v, want %d and %v", i, l.kv["failures"], l.err, w.failures, w.code)
		}
		if got, _ := l.kv["sameErrorSinceLastLine"].(int); got != w.suppressed {
			t.Errorf("line %d: sameErrorSinceLastLine %v, want %d", i, l.kv["sameErrorSinceLastLine"], w.suppressed)
		}
		wait, _ := l.kv["retryIn"].(time.Duration)
		next, _ := l.kv["nextAttempt"].(time.Time)
		if wait <= 0 || wait > DefaultUncertifiedBackoffMax || next.IsZero() || l.kv["holdingCertificate"] != false {
			t.Errorf("line %d: retryIn %v nextAttempt %v holdingCertificate %v", i, l.kv["retryIn"], l.kv["nextAttempt"], l.kv["holdingCertificate"])
		}
	}
	if installed == nil || installed.kv["afterFailures"] != 14 {
		t.Errorf("recovery line %+v, want afterFailures 14", installed)
	}
	if stopped == nil {
		t.Error("no line when the client stopped")
	}
}

// Stopped before it ever held a certificate (the kubelet ending a proxy
// whose startup probe ran out), the client says so as an error, with the
// last failure.
func TestStopWithoutCertificateIsLogged(t *testing.T) {
	rec := &recorder{}
	h := newHarness(t, harnessOpts{log: rec})
	h.fake.setRespond(unavailable)
	h.start()
	h.nextTimer().Fire()
	h.nextTimer()
	h.stop()
	lines := rec.all()
	last := lines[len(lines)-1]
	if last.msg != "stopping without a certificate: identity did not certify this proxy" || status.Code(errors.Unwrap(last.err)) != codes.Unavailable {
		t.Fatalf("last line %q (%v), want the stop without a certificate with the last error", last.msg, last.err)
	}
	if last.kv["attempts"] != 2 {
		t.Errorf("attempts %v, want 2", last.kv["attempts"])
	}
}
