package h2guard

import (
	"encoding/binary"
	"testing"
)

// BenchmarkState is the guard's accounting of one gRPC-like exchange on a
// connection: the client's HEADERS and DATA, the server's HEADERS, DATA
// and trailers, as the server reads and writes them (9 and n bytes at a
// time, as net/http's framer does).
func BenchmarkState(b *testing.B) {
	s := newState(Limits{})
	if _, err := s.clientBytes([]byte(Preface), 0); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	client := [][]byte{fr(frameHeaders, flagEndHeaders, 1, block), dataFrame(1, flagEndStream, msg)}
	server := [][]byte{fr(frameHeaders, flagEndHeaders, 1, []byte{0x88}), dataFrame(1, 0, msg), fr(frameHeaders, flagEndHeaders|flagEndStream, 1, []byte{0x40})}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := 1 + 2*uint32(i)
		now := int64(i) * 1000
		for _, f := range client {
			binary.BigEndian.PutUint32(f[5:], id)
			s.clientBytes(f[:frameHeaderLen], now)
			s.clientBytes(f[frameHeaderLen:], now)
		}
		for _, f := range server {
			binary.BigEndian.PutUint32(f[5:], id)
			s.serverBytes(f, now)
		}
	}
	if s.tripped != "" {
		b.Fatalf("tripped %q", s.tripped)
	}
}
