package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Errors of CheckCSR. Each error it returns wraps exactly one of them.
var (
	// ErrMalformedCSR: the request does not parse, its signature does not
	// verify, or its key is not ECDSA P-256.
	ErrMalformedCSR = errors.New("malformed certificate signing request")
	// ErrCSRNames: the request names something other than exactly the
	// requested identity.
	ErrCSRNames = errors.New("certificate signing request names")
)

// oidSubjectAltName is the subject alternative name extension.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// tagDNSName is the context-specific tag of a dNSName GeneralName.
const tagDNSName = 2

// CheckCSR parses a DER PKCS#10 request and checks that it is signed by an
// ECDSA P-256 key and carries exactly one subject alternative name, the DNS
// name identity, and a common name that is empty or identity. It returns the
// request's public key.
func CheckCSR(der []byte, identity string) (*ecdsa.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCSR, err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is %s, not ECDSA P-256", ErrMalformedCSR, describeKey(csr))
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCSR, err)
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != identity {
		return nil, fmt.Errorf("%w: common name %q is not the requested identity", ErrCSRNames, cn)
	}
	// Count every GeneralName, including kinds the x509 package does not
	// surface (otherName, directoryName, registeredID...): only one DNS
	// name is allowed.
	sans := 0
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		rest, err := asn1.Unmarshal(ext.Value, &names)
		if err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("%w: subject alternative names do not parse", ErrMalformedCSR)
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific || n.Tag != tagDNSName {
				return nil, fmt.Errorf("%w: a subject alternative name other than a DNS name (tag %d)", ErrCSRNames, n.Tag)
			}
			sans++
		}
	}
	switch {
	case len(csr.EmailAddresses) > 0, len(csr.IPAddresses) > 0, len(csr.URIs) > 0:
		return nil, fmt.Errorf("%w: e-mail, IP or URI subject alternative names are not allowed", ErrCSRNames)
	case sans != 1 || len(csr.DNSNames) != 1:
		return nil, fmt.Errorf("%w: %d DNS names %q, want exactly the requested identity", ErrCSRNames, len(csr.DNSNames), csr.DNSNames)
	case csr.DNSNames[0] != identity:
		return nil, fmt.Errorf("%w: DNS name %q is not the requested identity", ErrCSRNames, csr.DNSNames[0])
	}
	return pub, nil
}

func describeKey(csr *x509.CertificateRequest) string {
	if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); ok {
		return "ECDSA " + pub.Curve.Params().Name
	}
	return csr.PublicKeyAlgorithm.String()
}
