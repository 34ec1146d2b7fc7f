package transportv1

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, port := range []uint32{1, 80, 3306, 65535} {
		var buf bytes.Buffer
		if err := WriteHeader(&buf, &TransportHeader{Port: port}); err != nil {
			t.Fatalf("WriteHeader(port %d): %v", port, err)
		}
		buf.WriteString("application bytes")
		h, err := ReadHeader(&buf)
		if err != nil || h.GetPort() != port {
			t.Fatalf("ReadHeader = %v, %v; want port %d", h, err, port)
		}
		if rest := buf.String(); rest != "application bytes" {
			t.Fatalf("ReadHeader consumed application bytes; left %q", rest)
		}
	}
}

func TestHeaderFrameLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHeader(&buf, &TransportHeader{Port: 3306}); err != nil {
		t.Fatal(err)
	}
	// field 1, varint 3306 (0xea 0x19): 3 bytes, after a 2-byte length.
	if want := []byte{0, 3, 0x08, 0xea, 0x19}; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frame = %x, want %x", buf.Bytes(), want)
	}
}

func TestWriteHeaderRejects(t *testing.T) {
	for _, h := range []*TransportHeader{nil, {}, {Port: 65536}} {
		var buf bytes.Buffer
		if err := WriteHeader(&buf, h); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("WriteHeader(%v) = %v, want ErrMalformedHeader", h, err)
		}
		if buf.Len() != 0 {
			t.Errorf("WriteHeader(%v) wrote %d bytes for a rejected header", h, buf.Len())
		}
	}
}

func frame(body []byte) []byte {
	return append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
}

func TestReadHeaderRejects(t *testing.T) {
	valid, _ := proto.Marshal(&TransportHeader{Port: 80})
	withUnknown := protowire.AppendTag(append([]byte(nil), valid...), 99, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("future"))
	for name, tc := range map[string]struct {
		in        []byte
		malformed bool
		err       error
	}{
		"empty input":     {in: nil, err: io.EOF},
		"one byte":        {in: []byte{0}, err: io.ErrUnexpectedEOF},
		"short body":      {in: []byte{0, 5, 0x08}, err: io.ErrUnexpectedEOF},
		"length too long": {in: []byte{0x04, 0x01}, malformed: true},
		"max uint16":      {in: []byte{0xff, 0xff}, malformed: true},
		"empty header":    {in: frame(nil), malformed: true},
		"port 0":          {in: frame([]byte{0x08, 0x00}), malformed: true},
		"port 65536":      {in: frame(protowire.AppendVarint([]byte{0x08}, 65536)), malformed: true},
		"garbage":         {in: frame([]byte{0xff, 0xff, 0xff}), malformed: true},
		"wrong wire type": {in: frame([]byte{0x0a, 0x01, 0x50}), malformed: true},
	} {
		h, err := ReadHeader(bytes.NewReader(tc.in))
		switch {
		case err == nil:
			t.Errorf("%s: ReadHeader = %v, want an error", name, h)
		case tc.malformed && !errors.Is(err, ErrMalformedHeader):
			t.Errorf("%s: ReadHeader error %v, want ErrMalformedHeader", name, err)
		case !tc.malformed && !errors.Is(err, tc.err):
			t.Errorf("%s: ReadHeader error %v, want %v", name, err, tc.err)
		}
	}
	// Unknown fields from a newer client are skipped, not refused.
	h, err := ReadHeader(bytes.NewReader(frame(withUnknown)))
	if err != nil || h.GetPort() != 80 {
		t.Errorf("header with an unknown field: %v, %v", h, err)
	}
}

// FuzzReadHeader checks that no input makes ReadHeader panic, read past its
// frame, or accept a header out of range.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{0, 3, 0x08, 0xea, 0x19, 'x'})
	f.Add([]byte{0, 2, 0x08, 0x00})
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{0, 4, 0x08, 0x50, 0xfa, 0x06})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHeader(r)
		if err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("accepted an invalid header: %v", err)
		}
		if consumed := len(in) - r.Len(); consumed != 2+int(in[0])<<8+int(in[1]) {
			t.Fatalf("consumed %d bytes of a %d-byte frame", consumed, 2+int(in[0])<<8+int(in[1]))
		}
	})
}
