package forward

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// Failure is a response the proxy makes up itself instead of forwarding
// one: an HTTP status for HTTP clients, a gRPC status for gRPC clients, and
// the reason, sent as l5d-proxy-error (and grpc-message) and counted as the
// error label of response_total.
type Failure struct {
	Status int
	GRPC   codes.Code
	Reason string
}

// The failures of the proxy's own making, by cause.
var (
	FailNoEndpoints = Failure{http.StatusServiceUnavailable, codes.Unavailable, ErrNoEndpoints}
	FailOverloaded  = Failure{http.StatusServiceUnavailable, codes.Unavailable, ErrOverloaded}
	FailConnect     = Failure{http.StatusBadGateway, codes.Unavailable, ErrConnect}
	FailTimeout     = Failure{http.StatusGatewayTimeout, codes.DeadlineExceeded, ErrTimeout}
	FailUpstream    = Failure{http.StatusBadGateway, codes.Unavailable, ErrUpstream}
	FailForbidden   = Failure{http.StatusForbidden, codes.PermissionDenied, ErrForbidden}
	FailNoRoute     = Failure{http.StatusNotFound, codes.NotFound, ErrNoRoute}
	FailFilter      = Failure{http.StatusInternalServerError, codes.Internal, ErrFilter}
	FailNoMeta      = Failure{http.StatusInternalServerError, codes.Internal, "no connection metadata"}
	// FailDeadline answers a gRPC call whose own deadline (grpc-timeout)
	// passed before the upstream answered: the caller's doing, so its
	// error label stays empty, and the client sees DEADLINE_EXCEEDED as it
	// would from the server.
	FailDeadline = Failure{http.StatusGatewayTimeout, codes.DeadlineExceeded, ""}
)

// FailureError is how a layer of a stack answers a request itself: the
// server side of the stack writes the failure it carries.
type FailureError struct{ Failure Failure }

func (e *FailureError) Error() string { return "proxy failure: " + e.Failure.Reason }

// Fail returns the error that answers a request with f.
func Fail(f Failure) error { return &FailureError{Failure: f} }

// IsGRPC reports whether a request is a gRPC call (content-type
// application/grpc, application/grpc+proto, …): its errors must be gRPC
// statuses, since a gRPC client cannot read an HTTP error page.
func IsGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && (len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// WriteFailure answers r with f. A gRPC call gets a trailers-only
// response (HTTP 200 with grpc-status and grpc-message in its only
// HEADERS frame), as a gRPC server would answer; any other request gets
// f.Status with the reason as a plain-text body. Both carry
// l5d-proxy-error, so the answer cannot be mistaken for the
// application's.
func WriteFailure(w http.ResponseWriter, r *http.Request, f Failure) {
	if rec, ok := w.(*Recorder); ok && f.Reason != "" {
		rec.ErrName = f.Reason
	}
	if r != nil && IsGRPC(r) {
		h := w.Header()
		if f.Reason != "" {
			h.Set(mesh.ProxyErrorHeader, f.Reason)
		}
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(f.GRPC)))
		msg := f.Reason
		if msg == "" {
			msg = strings.ToLower(f.GRPC.String())
		}
		h.Set("Grpc-Message", grpcMessage(msg))
		w.WriteHeader(http.StatusOK)
		return
	}
	reason := f.Reason
	if reason == "" {
		reason = http.StatusText(f.Status)
	}
	ProxyError(w, f.Status, reason)
}

// ProxyError writes an HTTP response the proxy makes up itself, marked
// with l5d-proxy-error so it cannot be mistaken for the application's.
// Requests that may be gRPC calls are answered with WriteFailure instead.
func ProxyError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set(mesh.ProxyErrorHeader, reason)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(reason + "\n"))
}

// grpcMessage percent-encodes a grpc-message value: bytes outside
// printable ASCII, and '%' itself, as %XX (the gRPC wire format).
func grpcMessage(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FailureFor maps the error of forwarding r (received at start) to what
// the client is told. ok is false when the caller itself went away (it
// cancelled, or its connection closed): nobody is left to answer, and it is
// not a failure of the proxy or of the upstream.
func FailureFor(r *http.Request, start time.Time, err error) (f Failure, ok bool) {
	if r.Context().Err() != nil {
		return Failure{}, false
	}
	var own *FailureError
	if errors.As(err, &own) {
		return own.Failure, true
	}
	if d, has := GRPCTimeout(r); has && !start.IsZero() && time.Since(start) >= d {
		// The upstream gave up on the call (a gRPC server resets the
		// stream when its deadline passes) or took too long: either way
		// the caller's deadline ran out first.
		return FailDeadline, true
	}
	var se h2StreamError
	switch {
	case isDialError(err):
		return FailConnect, true
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return FailTimeout, true
	case errors.As(err, &se):
		// The upstream reset the stream: tell a gRPC client what the
		// reset means (the gRPC HTTP/2 mapping); an HTTP client gets 502.
		f := FailUpstream
		f.GRPC = grpcCodeOfReset(se.Code)
		return f, true
	default:
		return FailUpstream, true
	}
}

// IsConnectError reports whether err says that connecting failed: the
// request or connection was not sent, so it may go to another endpoint.
func IsConnectError(err error) bool { return isDialError(err) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// h2StreamError has the shape of net/http's HTTP/2 stream error, which
// converts itself to any struct of the same fields (errors.As): it says
// with which code the peer reset a stream.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string { return "stream error " + strconv.Itoa(int(e.Code)) }

// grpcCodeOfReset maps an HTTP/2 RST_STREAM code to the gRPC status a
// client reports for it (gRPC's "HTTP/2 transport mapping").
func grpcCodeOfReset(code uint32) codes.Code {
	switch code {
	case 0x7: // REFUSED_STREAM: not processed, safe to retry
		return codes.Unavailable
	case 0x8: // CANCEL
		return codes.Canceled
	case 0xb: // ENHANCE_YOUR_CALM
		return codes.ResourceExhausted
	case 0xc: // INADEQUATE_SECURITY
		return codes.PermissionDenied
	default:
		return codes.Internal
	}
}

// GRPCTimeout returns a gRPC call's timeout from its grpc-timeout header
// (at most 8 digits and a unit: H, M, S, m, u or n).
func GRPCTimeout(r *http.Request) (time.Duration, bool) {
	v := r.Header.Get("Grpc-Timeout")
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64(time.Duration(1<<63-1)/unit) {
		return 1<<63 - 1, true
	}
	return time.Duration(n) * unit, true
}
