package forward

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// Error names, for l5d-proxy-error and the error metric label.
const (
	ErrNoEndpoints     = "no endpoints"
	ErrConnect         = "connect failed"
	ErrTimeout         = "timeout"
	ErrUpstream        = "upstream failed"
	ErrShuttingDown    = "shutting down"
	ErrNotReady        = "proxy not ready"
	ErrForbidden       = "forbidden"
	ErrNoRoute         = "no route found for request"
	ErrFilter          = "route has a filter this proxy does not support"
	ErrDiscoveryFailed = "discovery failed"
)

// The mesh's headers as net/http's header maps hold them (canonical), for
// direct map access on the request path: Header.Get, Set and Del with the
// lowercase wire names of package mesh canonicalize them, with an
// allocation, on every call.
var (
	ClientIDKey  = http.CanonicalHeaderKey(mesh.ClientIDHeader)
	OrigProtoKey = http.CanonicalHeaderKey(mesh.OrigProtoHeader)
	NotSentKey   = http.CanonicalHeaderKey(mesh.NotSentHeader)
)

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// NewReverseProxy returns a reverse proxy that streams both ways, passes
// trailers and upgrades, and answers transport errors with a marked 502 or
// 504 (a gRPC status for gRPC calls; nothing when the caller went away).
// rewrite sets the outgoing request's URL and headers.
//
// Responses of unknown length (gRPC, streams, server-sent events) are
// flushed after every write so they are not delayed; responses with a
// Content-Length are written through the server's buffer, which saves a
// syscall per body write.
func NewReverseProxy(transport http.RoundTripper, rewrite func(*httputil.ProxyRequest)) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   rewrite,
		Transport: transport,
		// 0: ReverseProxy flushes at once on its own for responses of
		// unknown length or of type text/event-stream.
		FlushInterval: 0,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if answerRefusedBody(w, r) {
				return // the client's body was malformed: its 400, not a 502
			}
			var start time.Time
			if rec, ok := w.(*Recorder); ok {
				start = rec.start
			}
			if f, ok := FailureFor(r, start, err); ok {
				WriteFailure(w, r, f)
			}
		},
		// Bodies go through io.Copy with pooled 32 KiB buffers.
		BufferPool: bufferPool{},
	}
}

// Recorder wraps a ResponseWriter to learn the response's status and gRPC
// status for metrics, while keeping Flush, Hijack and full duplex
// reachable through Unwrap (http.ResponseController).
type Recorder struct {
	http.ResponseWriter
	Status  int
	ErrName string
	start   time.Time
	header  time.Time
}

// NewRecorder starts timing a request.
func NewRecorder(w http.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, start: time.Now()}
}

// WriteHeader records the status and the time to the response's headers.
func (r *Recorder) WriteHeader(status int) {
	if r.Status == 0 && status >= 200 || status == http.StatusSwitchingProtocols {
		r.Status = status
		r.header = time.Now()
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if r.Status == 0 {
		r.Status = http.StatusOK
		r.header = time.Now()
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush keeps streaming responses streaming when the caller checks for
// http.Flusher directly.
func (r *Recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// HeaderLatency is the time from the request to the response's headers,
// or 0 when no response was written.
func (r *Recorder) HeaderLatency() time.Duration {
	if r.header.IsZero() {
		return 0
	}
	return r.header.Sub(r.start)
}

// Done records the response on h: failure for 5xx, for a gRPC status other
// than OK, and for responses the proxy made up. A request whose caller went
// away before any response is not a failure (nobody got an error), as in
// Linkerd.
func (r *Recorder) Done(h *metrics.Handles) {
	if h == nil {
		return
	}
	status := r.Status
	end := r.header
	if end.IsZero() {
		end = time.Now()
	}
	grpcStatus := r.Header().Get("Grpc-Status")
	if grpcStatus == "" {
		// A gRPC status normally arrives in the trailers.
		grpcStatus = r.Header().Get(http.TrailerPrefix + "Grpc-Status")
	}
	failure := status >= 500 || (r.ErrName != "" && !isClientError(r.ErrName)) || (grpcStatus != "" && grpcStatus != "0")
	h.Response(status, failure, grpcStatus, r.ErrName, float64(end.Sub(r.start).Microseconds())/1000)
}

// IsUpgrade reports whether a request asks to switch protocols (WebSocket
// and the like); such requests cannot travel over HTTP/2.
func IsUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Header.Get("Upgrade") != "" || r.Method == http.MethodConnect
}

// OrigProto is the l5d-orig-proto value for an HTTP/1 request.
func OrigProto(r *http.Request) string {
	if r.ProtoMinor == 0 {
		return mesh.OrigProtoHTTP10
	}
	return mesh.OrigProtoHTTP11
}

// Authority is the request's authority with a port, for metrics.
func Authority(r *http.Request, defaultPort uint16) string {
	host := r.Host
	if host == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(int(defaultPort)))
}
