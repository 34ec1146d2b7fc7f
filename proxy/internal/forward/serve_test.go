package forward

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// flakyListener fails its first accepts with the errors it is given, then
// hands out the connections it is given, then blocks until closed.
type flakyListener struct {
	errs   []error
	conns  chan net.Conn
	closed chan struct{}
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *flakyListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *flakyListener) Addr() net.Addr { return &net.TCPAddr{} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// Running out of file descriptors (or a connection aborted before it was
// accepted) does not end the listener: each failure is counted, the accept
// is retried after a backoff, and the next connection is served.
func TestServeSurvivesTransientAcceptErrors(t *testing.T) {
	m := metrics.New()
	lim := NewLimiter(Limits{}.WithDefaults(), m.Load("inbound"), logr.Discard())
	ln := &flakyListener{
		errs:   []error{acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ECONNABORTED)},
		conns:  make(chan net.Conn, 1),
		closed: make(chan struct{}),
	}
	client, server := net.Pipe()
	defer client.Close()
	ln.conns <- server
	handled := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, time.Second, NewHTTPServer(nil, DefaultLimits, lim, logr.Discard()), &Conns{}, lim, func(c net.Conn, _ *Slot) {
			c.Close()
			close(handled)
		})
	}()
	select {
	case <-handled:
	case err := <-done:
		t.Fatalf("Serve returned %v before serving the connection after the accept errors", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	for errno, want := range map[string]float64{"EMFILE": 2, "ENFILE": 1, "ECONNABORTED": 1} {
		if got := m.Sample("accept_errors_total", map[string]string{"direction": "inbound", "errno": errno}); got != want {
			t.Errorf("accept_errors_total{errno=%s} = %v, want %v", errno, got, want)
		}
	}
}

// Any other accept error is the listener's end, and Serve returns it.
func TestServeEndsOnListenerError(t *testing.T) {
	boom := errors.New("listener broken")
	ln := &flakyListener{errs: []error{boom}, closed: make(chan struct{})}
	err := Serve(context.Background(), ln, time.Second, NewHTTPServer(nil, DefaultLimits, nil, logr.Discard()), &Conns{}, nil, func(c net.Conn, _ *Slot) { c.Close() })
	if !errors.Is(err, boom) {
		t.Errorf("Serve = %v, want %v", err, boom)
	}
}

func TestFitFileLimit(t *testing.T) {
	in, out := Limits{MaxConnections: 4096}, Limits{MaxConnections: 4096}
	if needed, lowered := FitFileLimit(1<<20, &in, &out); lowered || needed != 2*2*4096+descriptorReserve {
		t.Errorf("a large limit: needed %d, lowered %v", needed, lowered)
	}
	// A container's usual 1024: each side gets what fits, two descriptors
	// a connection.
	if _, lowered := FitFileLimit(1024, &in, &out); !lowered || in.MaxConnections != 192 || out.MaxConnections != 192 {
		t.Errorf("nofile 1024: lowered %v, inbound %d, outbound %d; want 192 each", lowered, in.MaxConnections, out.MaxConnections)
	}
	tiny := Limits{MaxConnections: 10}
	if _, lowered := FitFileLimit(100, &tiny); !lowered || tiny.MaxConnections != 1 {
		t.Errorf("nofile below the reserve: lowered %v, max %d; want 1", lowered, tiny.MaxConnections)
	}
}
