// Package forward moves bytes and requests between a client connection and
// the connection the proxy opened for it: opaque TCP both ways with
// half-close, and the HTTP helpers both proxy directions share.
package forward

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/linkerd-go/linkerd-go/proxy/internal/metrics"
)

// unbufferer is a connection that buffered its first bytes
// (*detect.Conn).
type unbufferer interface {
	Unbuffer() ([]byte, net.Conn)
}

// closeWriter is a connection whose write side can be closed alone.
type closeWriter interface{ CloseWrite() error }

// TCP copies bytes both ways until both directions are done, propagating
// each side's end of stream as a half-close, then closes both. Byte counts
// go to h (read: from the client; write: to the client). It returns the
// first error other than a clean end of stream.
func TCP(client, server net.Conn, h *metrics.Handles) error {
	// A connection read for protocol detection: send what was read, then
	// copy from the socket itself so the kernel can splice.
	src := io.Reader(client)
	if u, ok := client.(unbufferer); ok {
		head, raw := u.Unbuffer()
		if len(head) > 0 {
			if _, err := server.Write(head); err != nil {
				client.Close()
				server.Close()
				return err
			}
			if h != nil {
				h.TCPRead.Add(float64(len(head)))
			}
		}
		src, client = raw, raw
	}
	var wg sync.WaitGroup
	var upErr, downErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		n, err := io.Copy(server, src)
		if h != nil {
			h.TCPRead.Add(float64(n))
		}
		upErr = err
		halfClose(server)
	}()
	n, err := io.Copy(client, server)
	if h != nil {
		h.TCPWrite.Add(float64(n))
	}
	downErr = err
	halfClose(client)
	wg.Wait()
	client.Close()
	server.Close()
	for _, e := range []error{upErr, downErr} {
		if e != nil && !isClosed(e) {
			return e
		}
	}
	return nil
}

// halfClose ends the write side so the peer sees end of stream, or closes
// the connection when it cannot be half-closed.
func halfClose(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}

// isClosed reports errors that only say the other side went away.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Errno names a connection error for the tcp_close_total errno label.
func Errno(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNRESET:
			return "ECONNRESET"
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		case syscall.ETIMEDOUT:
			return "ETIMEDOUT"
		case syscall.EPIPE:
			return "EPIPE"
		case syscall.EHOSTUNREACH:
			return "EHOSTUNREACH"
		case syscall.ENETUNREACH:
			return "ENETUNREACH"
		case syscall.EMFILE:
			return "EMFILE"
		case syscall.ENFILE:
			return "ENFILE"
		case syscall.ECONNABORTED:
			return "ECONNABORTED"
		}
		return "EOTHER"
	}
	if err != nil {
		return "EOTHER"
	}
	return ""
}
