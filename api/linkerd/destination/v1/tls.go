package destinationv1

import "errors"

// ErrUnknownIdentity is returned by TlsIdentity.DnsLikeName for an identity the
// caller cannot verify. The caller must then treat the endpoint as unreachable,
// never fall back to plaintext.
var ErrUnknownIdentity = errors.New("TLS identity of unknown kind or empty")

// NewTlsIdentity returns the TLS identity of an endpoint whose proxy holds the
// identity name (see identityv1.Name).
func NewTlsIdentity(name string) *TlsIdentity {
	return &TlsIdentity{Kind: &TlsIdentity_DnsLike{DnsLike: &TlsIdentity_DnsLikeIdentity{Name: name}}}
}

// DnsLikeName returns the name the server's certificate must carry and the
// server name (SNI) to send for it.
func (t *TlsIdentity) DnsLikeName() (name, serverName string, err error) {
	name = t.GetDnsLike().GetName()
	if name == "" {
		return "", "", ErrUnknownIdentity
	}
	serverName = t.GetServerName()
	if serverName == "" {
		serverName = name
	}
	return name, serverName, nil
}
