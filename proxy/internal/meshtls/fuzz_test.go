package meshtls_test

import (
	"testing"

	"github.com/linkerd-go/linkerd-go/proxy/internal/meshtls"
)

// FuzzParseBundle: any bytes are parsed or refused without a panic, and a
// bundle that parses holds at least one anchor.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("text\n-----BEGIN EC PRIVATE KEY-----\nAQ==\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := meshtls.ParseBundle(data)
		if err == nil && b.Len() == 0 {
			t.Fatal("a bundle without anchors parsed")
		}
	})
}
