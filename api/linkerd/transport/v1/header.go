package transportv1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
)

// ALPN is the TLS application protocol a client proxy asks for when it opens a
// mesh transport connection; the header frame follows the handshake.
const ALPN = "transport.l5d.io/v1"

// MaxHeaderLength is the longest encoded TransportHeader a frame may carry.
const MaxHeaderLength = 1024

// ErrMalformedHeader is wrapped by the errors ReadHeader and WriteHeader
// return for a header that breaks the contract.
var ErrMalformedHeader = errors.New("malformed transport header")

// Validate reports whether the header is complete and in range.
func (h *TransportHeader) Validate() error {
	if h == nil {
		return fmt.Errorf("%w: missing", ErrMalformedHeader)
	}
	if h.GetPort() == 0 || h.GetPort() > 65535 {
		return fmt.Errorf("%w: port %d out of range 1-65535", ErrMalformedHeader, h.GetPort())
	}
	return nil
}

// WriteHeader writes h as one frame: a 2-byte big-endian length and the
// encoded header, in a single Write.
func WriteHeader(w io.Writer, h *TransportHeader) error {
	if err := h.Validate(); err != nil {
		return err
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return fmt.Errorf("encoding transport header: %w", err)
	}
	if len(body) > MaxHeaderLength {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrMalformedHeader, len(body), MaxHeaderLength)
	}
	frame := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(frame, uint16(len(body)))
	_, err = w.Write(append(frame, body...))
	return err
}

// ReadHeader reads exactly one frame from r and returns the header it
// carries. It reads nothing past the frame, so the application's bytes that
// follow stay in r. Errors from r are returned as they are (io.EOF,
// io.ErrUnexpectedEOF, timeouts); a frame that breaks the contract gives an
// error wrapping ErrMalformedHeader.
func ReadHeader(r io.Reader) (*TransportHeader, error) {
	var prefix [2]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(prefix[:]))
	if n > MaxHeaderLength {
		return nil, fmt.Errorf("%w: length %d, more than %d", ErrMalformedHeader, n, MaxHeaderLength)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	h := &TransportHeader{}
	if err := proto.Unmarshal(body, h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedHeader, err)
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}
