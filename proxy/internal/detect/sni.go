package detect

import (
	"encoding/binary"
	"errors"
)

// ErrNoServerName is returned when a ClientHello has no server_name
// extension, or is not a ClientHello the proxy can read.
var ErrNoServerName = errors.New("no server name in the TLS ClientHello")

// ServerName reads the SNI of the TLS ClientHello at the start of c without
// consuming it, so the handshake can then be terminated locally or the
// bytes passed through untouched. The ClientHello must fit in the
// detection buffer (4 KiB); larger ones are reported as ErrNoServerName.
func (c *Conn) ServerName() (string, error) {
	if c.r == nil {
		return "", ErrNoServerName
	}
	hdr, err := c.r.Peek(5)
	if err != nil {
		return "", err
	}
	if hdr[0] != 0x16 {
		return "", ErrNoServerName
	}
	n := 5 + int(binary.BigEndian.Uint16(hdr[3:5]))
	if n > bufferSize {
		return "", ErrNoServerName
	}
	rec, err := c.r.Peek(n)
	if err != nil {
		return "", err
	}
	return parseServerName(rec[5:])
}

// parseServerName extracts the host name from a ClientHello handshake
// message (RFC 8446 §4.1.2, RFC 6066 §3). Every length is checked against
// what is left: the input comes from the network.
func parseServerName(b []byte) (string, error) {
	p := parser{b: b}
	if typ, ok := p.u8(); !ok || typ != 1 { // client_hello
		return "", ErrNoServerName
	}
	body, ok := p.vec(3)
	if !ok {
		return "", ErrNoServerName
	}
	p = parser{b: body}
	if !p.skip(2+32) || !p.skipVec(1) || !p.skipVec(2) || !p.skipVec(1) { // version, random, session id, suites, compression
		return "", ErrNoServerName
	}
	exts, ok := p.vec(2)
	if !ok {
		return "", ErrNoServerName
	}
	p = parser{b: exts}
	for len(p.b) > 0 {
		typ, ok1 := p.u16()
		data, ok2 := p.vec(2)
		if !ok1 || !ok2 {
			return "", ErrNoServerName
		}
		if typ != 0 { // server_name
			continue
		}
		q := parser{b: data}
		list, ok := q.vec(2)
		if !ok {
			return "", ErrNoServerName
		}
		q = parser{b: list}
		for len(q.b) > 0 {
			nameType, ok1 := q.u8()
			name, ok2 := q.vec(2)
			if !ok1 || !ok2 {
				return "", ErrNoServerName
			}
			if nameType == 0 && len(name) > 0 { // host_name
				return string(name), nil
			}
		}
		return "", ErrNoServerName
	}
	return "", ErrNoServerName
}

type parser struct{ b []byte }

func (p *parser) u8() (byte, bool) {
	if len(p.b) < 1 {
		return 0, false
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v, true
}

func (p *parser) u16() (uint16, bool) {
	if len(p.b) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(p.b)
	p.b = p.b[2:]
	return v, true
}

func (p *parser) skip(n int) bool {
	if len(p.b) < n {
		return false
	}
	p.b = p.b[n:]
	return true
}

// vec reads a vector with a big-endian length prefix of lenBytes bytes.
func (p *parser) vec(lenBytes int) ([]byte, bool) {
	if len(p.b) < lenBytes {
		return nil, false
	}
	n := 0
	for _, x := range p.b[:lenBytes] {
		n = n<<8 | int(x)
	}
	p.b = p.b[lenBytes:]
	if len(p.b) < n {
		return nil, false
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v, true
}

func (p *parser) skipVec(lenBytes int) bool {
	_, ok := p.vec(lenBytes)
	return ok
}
