package h2guard

import "testing"

// FuzzState runs arbitrary client and server byte streams, cut into
// arbitrary pieces, through a connection's accounting with small budgets.
// It must never panic, never let more than it was given reach the server,
// never let anything reach it once tripped, and keep its memory bounded.
// The seed corpus (testdata/fuzz/FuzzState) holds each flood, answered
// and unanswered resets, padding, CONTINUATION, stream errors, HTTP/1 and
// frames of the largest length.
func FuzzState(f *testing.F) {
	small := Budget{Burst: 3, PerSecond: 1}
	lim := Limits{
		RapidResets: small, Settings: small, Pings: small, WindowUpdates: small,
		EmptyFrames: small, IgnoredFrames: small, StreamErrors: small, MaxContinuations: 3,
	}
	f.Fuzz(func(t *testing.T, client, server []byte, step uint8) {
		s := newState(lim)
		size := int(step%64) + 1
		var now int64
		for len(client) > 0 || len(server) > 0 {
			if len(client) > 0 {
				chunk := client[:min(size, len(client))]
				client = client[len(chunk):]
				was := s.tripped
				n, err := s.clientBytes(chunk, now)
				if n < 0 || n > len(chunk) {
					t.Fatalf("%d of %d bytes reach the server", n, len(chunk))
				}
				if was != "" && n != 0 {
					t.Fatalf("%d bytes reach the server after the trip", n)
				}
				if err != nil {
					client = nil
				}
			}
			if len(server) > 0 {
				chunk := server[:min(size+int(step>>6), len(server))]
				server = server[len(chunk):]
				n, goAway := s.serverBytes(chunk, now)
				if n < 0 || n > len(chunk) || (!goAway && n != len(chunk)) {
					t.Fatalf("server: %d of %d bytes, goAway %v", n, len(chunk), goAway)
				}
				if goAway && s.tripped == "" {
					t.Fatal("GOAWAY without a reason")
				}
			}
			if len(s.streams.s) > maxTrackedStreams {
				t.Fatalf("%d streams held", len(s.streams.s))
			}
			now += int64(step) * 1e6
		}
	})
}
