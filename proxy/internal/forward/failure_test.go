package forward

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func grpcRequest(timeout string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/pkg.Svc/Method", nil)
	r.Header.Set("Content-Type", "application/grpc")
	if timeout != "" {
		r.Header.Set("Grpc-Timeout", timeout)
	}
	return r
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc":             true,
		"application/grpc+proto":       true,
		"application/grpc;charset=utf": true,
		"application/grpc-web":         false, // gRPC-Web reads HTTP statuses
		"application/grpcx":            false,
		"application/json":             false,
		"":                             false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", ct)
		if got := IsGRPC(r); got != want {
			t.Errorf("IsGRPC(%q) = %v, want %v", ct, got, want)
		}
	}
}

// A gRPC call gets a trailers-only answer a gRPC client can read; any other
// request the HTTP status and a text body. Both are marked as the proxy's.
func TestWriteFailure(t *testing.T) {
	w := httptest.NewRecorder()
	WriteFailure(w, grpcRequest(""), FailNoEndpoints)
	if w.Code != 200 || w.Header().Get("Grpc-Status") != "14" || w.Header().Get("Grpc-Message") != "no endpoints" ||
		w.Header().Get("Content-Type") != "application/grpc" || w.Header().Get("L5d-Proxy-Error") != "no endpoints" || w.Body.Len() != 0 {
		t.Errorf("gRPC: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
	w = httptest.NewRecorder()
	WriteFailure(w, httptest.NewRequest(http.MethodGet, "/", nil), FailNoEndpoints)
	if w.Code != 503 || w.Header().Get("Grpc-Status") != "" || w.Header().Get("L5d-Proxy-Error") != "no endpoints" || w.Body.String() != "no endpoints\n" {
		t.Errorf("HTTP: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
	// The caller's own deadline: no proxy error, the status a server gives.
	w = httptest.NewRecorder()
	WriteFailure(w, grpcRequest("1m"), FailDeadline)
	if w.Header().Get("Grpc-Status") != "4" || w.Header().Get("L5d-Proxy-Error") != "" || w.Header().Get("Grpc-Message") != "deadlineexceeded" {
		t.Errorf("deadline: %v", w.Header())
	}
	// Counted as the proxy's error on the recorder.
	rec := NewRecorder(httptest.NewRecorder())
	WriteFailure(rec, grpcRequest(""), FailConnect)
	if rec.ErrName != ErrConnect {
		t.Errorf("recorder error name %q, want %q", rec.ErrName, ErrConnect)
	}
}

func TestGRPCMessageEncoding(t *testing.T) {
	if got := grpcMessage("100% ok\nnot ascii: é"); got != "100%25 ok%0Anot ascii: %C3%A9" {
		t.Errorf("grpcMessage = %q", got)
	}
}

func TestGRPCTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "200m": 200 * time.Millisecond,
		"5u": 5 * time.Microsecond, "7n": 7, "99999999H": 1<<63 - 1,
	} {
		r := grpcRequest(v)
		if got, ok := GRPCTimeout(r); !ok || got != want {
			t.Errorf("GRPCTimeout(%q) = %v, %v; want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "S", "1", "1x", "-1S", "123456789S", "1.5S"} {
		if d, ok := GRPCTimeout(grpcRequest(v)); ok {
			t.Errorf("GRPCTimeout(%q) = %v, want none", v, d)
		}
	}
}

// resetByPeer returns the error net/http's HTTP/2 client gives when the
// server resets the stream before answering (a handler aborting).
func resetByPeer(t *testing.T) error {
	t.Helper()
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	srv.Config.Protocols = &protocols
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{Protocols: &protocols}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error from an aborted stream")
	}
	return err
}

func TestFailureFor(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	for name, c := range map[string]struct {
		err  error
		want Failure
	}{
		"connect refused":   {dial, FailConnect},
		"connect timeout":   {dialTimeout, FailConnect}, // not sent: not a response timeout
		"response timeout":  {context.DeadlineExceeded, FailTimeout},
		"read timeout":      {&net.OpError{Op: "read", Err: timeoutErr{}}, FailTimeout},
		"reset by the peer": {resetByPeer(t), Failure{http.StatusBadGateway, codes.Internal, ErrUpstream}},
		"connection closed": {errors.New("unexpected EOF"), FailUpstream},
	} {
		if got, ok := FailureFor(grpcRequest(""), time.Now(), c.err); !ok || got != c.want {
			t.Errorf("%s: FailureFor = %+v, %v; want %+v", name, got, ok, c.want)
		}
	}

	// The caller's deadline passed before the upstream failed: the caller
	// is told DEADLINE_EXCEEDED, whatever the upstream did.
	if got, ok := FailureFor(grpcRequest("100m"), time.Now().Add(-time.Second), resetByPeer(t)); !ok || got != FailDeadline {
		t.Errorf("past the gRPC deadline: %+v, %v; want FailDeadline", got, ok)
	}
	if got, _ := FailureFor(grpcRequest("1H"), time.Now(), resetByPeer(t)); got == FailDeadline {
		t.Error("within the gRPC deadline: FailDeadline")
	}

	// The caller went away: nobody to answer, not a failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if f, ok := FailureFor(grpcRequest("").WithContext(ctx), time.Now(), context.Canceled); ok {
		t.Errorf("a cancelled caller: %+v, want none", f)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestGRPCCodeOfReset(t *testing.T) {
	for code, want := range map[uint32]codes.Code{0x0: codes.Internal, 0x2: codes.Internal, 0x7: codes.Unavailable, 0x8: codes.Canceled, 0xb: codes.ResourceExhausted, 0xc: codes.PermissionDenied} {
		if got := grpcCodeOfReset(code); got != want {
			t.Errorf("grpcCodeOfReset(%#x) = %v, want %v", code, got, want)
		}
	}
}
