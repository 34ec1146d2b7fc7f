package forward

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// run feeds input through a guard in pieces of size step (0: all at once)
// and returns what the server would read.
func run(input []byte, step int) []byte {
	client, server := net.Pipe()
	go func() {
		if step == 0 {
			client.Write(input)
		} else {
			for i := 0; i < len(input); i += step {
				client.Write(input[i:min(i+step, len(input))])
			}
		}
		client.Close()
	}()
	out, _ := io.ReadAll(GuardHTTP1(server))
	return out
}

func TestGuardPassesWellFramedRequests(t *testing.T) {
	in := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		"GET /z HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, step := range []int{0, 1, 3, 7} {
		if got := run(in, step); !bytes.Equal(got, in) {
			t.Errorf("step %d: guard changed a well-framed stream:\n%q", step, got)
		}
	}
}

func TestGuardRejectsAmbiguousFraming(t *testing.T) {
	prefix := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	for name, req := range map[string]string{
		"CL and TE":            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE not chunked":       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
		"two TE":               "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"differing CL":         "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"negative CL":          "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"obs-fold":             "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"bare LF":              "GET / HTTP/1.1\nHost: a\n\n",
		"bare CR":              "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
		"NUL":                  "GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
		"bad chunk size":       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without CRLF":   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxY\r\n0\r\n\r\n",
		"bare LF chunk line":   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
		"header without colon": "GET / HTTP/1.1\r\nHost a\r\n\r\n",
	} {
		got := run([]byte(prefix+req+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"), 0)
		if !bytes.HasPrefix(got, []byte(prefix)) || !bytes.HasSuffix(got, rejectedRequest) || bytes.Contains(got, []byte("smuggled")) {
			t.Errorf("%s: server would read %q", name, got)
		}
	}
}

func FuzzGuardSplitIndependence(f *testing.F) {
	f.Add([]byte("POST /y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET"), 1)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		if step < 1 || step > 64 || len(in) > 8<<10 {
			return
		}
		whole, pieces := run(in, 0), run(in, step)
		if !bytes.Equal(whole, pieces) {
			t.Fatalf("output depends on how bytes arrive:\nwhole  %q\npieces %q", whole, pieces)
		}
	})
}
