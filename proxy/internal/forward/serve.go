package forward

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Conns tracks the opaque connections a side is forwarding, so shutdown
// can cut what is still open when the grace period ends.
type Conns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Track adds c; the returned func removes it.
func (s *Conns) Track(c net.Conn) (untrack func()) {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

func (s *Conns) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Serve accepts on ln until ctx ends, running handle for each connection
// in its own goroutine, with http serving the connections handle gives it.
// A failed accept (out of file descriptors, a connection aborted before it
// was accepted) is counted and retried after a short backoff: it ends
// neither the listener nor the proxy.
// A connection past the limiter's MaxConnections is reset as soon as it is
// accepted; each other one holds a slot until handle returns, or, when
// handle gave it to http (with the slot in its ConnMeta), until http is done
// with it. On shutdown it stops accepting, lets HTTP requests in flight
// finish and opaque connections run until grace ends, then closes what is
// left. It returns after every handler has returned.
func Serve(ctx context.Context, ln net.Listener, grace time.Duration, http *HTTPServer, conns *Conns, limiter *Limiter, handle func(net.Conn, *Slot)) error {
	if limiter == nil {
		limiter = NewLimiter(Limits{}, nil, logr.Discard())
	}
	var retry acceptBackoff
	httpDone := make(chan error, 1)
	go func() { httpDone <- http.Run() }()
	stopAccept := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopAccept:
		}
		ln.Close()
	}()
	var handlers sync.WaitGroup
	var err error
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if !transientAcceptError(aerr) {
				err = aerr
				break
			}
			limiter.acceptFailed(aerr)
			if !retry.wait(ctx) {
				break
			}
			continue
		}
		retry.reset()
		slot, ok := limiter.acceptConn()
		if !ok {
			refuse(c)
			continue
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			handle(c, slot)
			if !slot.kept.Load() {
				slot.Release()
			}
		}()
	}
	close(stopAccept)
	shutdown, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	_ = http.Shutdown(shutdown)
	<-httpDone
	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-shutdown.Done():
		conns.closeAll()
		<-done
	}
	return err
}

// transientAcceptError reports accept errors that say nothing about the
// listener itself: the process or the system is out of descriptors or
// memory for now, or a connection went away before it was accepted.
func transientAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// acceptBackoff spaces retries of a failing accept: 5ms, doubling to 1s,
// so that a process out of descriptors does not spin while connections
// close and give some back.
type acceptBackoff struct{ delay time.Duration }

const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

func (b *acceptBackoff) reset() { b.delay = 0 }

// wait sleeps for the next delay; false when ctx ended first.
func (b *acceptBackoff) wait(ctx context.Context) bool {
	if b.delay == 0 {
		b.delay = acceptBackoffMin
	} else {
		b.delay = min(2*b.delay, acceptBackoffMax)
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
