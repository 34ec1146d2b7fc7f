package forward

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// PlainTransports returns the plaintext client pools of a side, HTTP/1.x
// and HTTP/2 with prior knowledge (h2c), connecting with dial. Responses
// are passed on as they come (no transparent decompression).
func PlainTransports(dial func(ctx context.Context, network, addr string) (net.Conn, error)) (h1, h2 *http.Transport) {
	var p1, p2 http.Protocols
	p1.SetHTTP1(true)
	p2.SetUnencryptedHTTP2(true)
	h1 = &http.Transport{DialContext: dial, Protocols: &p1, MaxIdleConnsPerHost: 100, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	h2 = &http.Transport{DialContext: dial, Protocols: &p2, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return h1, h2
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
