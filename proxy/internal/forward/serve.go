package forward

import (
	"context"
	"net"
	"sync"
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
			if ctx.Err() == nil {
				err = aerr
			}
			break
		}
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
