package destinationv1

import (
	"errors"
	"testing"
)

func TestTlsIdentity(t *testing.T) {
	const id = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	name, sni, err := NewTlsIdentity(id).DnsLikeName()
	if err != nil || name != id || sni != id {
		t.Fatalf("DnsLikeName() = %q, %q, %v", name, sni, err)
	}
	withSNI := NewTlsIdentity(id)
	withSNI.ServerName = "gateway.example"
	if name, sni, err := withSNI.DnsLikeName(); err != nil || name != id || sni != "gateway.example" {
		t.Fatalf("DnsLikeName() with a server name = %q, %q, %v", name, sni, err)
	}
	// A kind this code does not know (here: none set) must not be usable.
	for _, ti := range []*TlsIdentity{{}, {ServerName: "x"}, NewTlsIdentity("")} {
		if _, _, err := ti.DnsLikeName(); !errors.Is(err, ErrUnknownIdentity) {
			t.Errorf("DnsLikeName() of %v = %v, want ErrUnknownIdentity", ti, err)
		}
	}
}
