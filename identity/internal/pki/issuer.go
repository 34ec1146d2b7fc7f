package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// IssuerFiles returns the names of the certificate and key files of scheme.
func IssuerFiles(scheme string) (certFile, keyFile string, err error) {
	switch scheme {
	case mesh.IssuerSchemeLinkerd:
		return "crt.pem", "key.pem", nil
	case mesh.IssuerSchemeKubernetes:
		return "tls.crt", "tls.key", nil
	default:
		return "", "", fmt.Errorf("issuer scheme %q is neither %q nor %q", scheme, mesh.IssuerSchemeLinkerd, mesh.IssuerSchemeKubernetes)
	}
}

// ErrIssuerFilesChanging is returned by ReadIssuerDir when the folder kept
// changing while it was read; reading again later succeeds.
var ErrIssuerFilesChanging = errors.New("issuer files changed while being read")

// dataLink is the symbolic link through which the kubelet publishes the
// current content of a Secret or ConfigMap volume. An update writes a new
// hidden folder and swaps the link to it in one rename, so reading through
// the link's target gives a consistent pair of files.
const dataLink = "..data"

// ReadIssuerDir reads the issuer certificate and key files of scheme from
// dir. When dir is a Kubernetes volume (it has a "..data" link) both files
// are read from the one folder the link points to, so a certificate and a
// key of different generations are never paired.
func ReadIssuerDir(dir, scheme string) (certPEM, keyPEM []byte, err error) {
	certFile, keyFile, err := IssuerFiles(scheme)
	if err != nil {
		return nil, nil, err
	}
	for range 3 {
		from := dir
		target, err := os.Readlink(filepath.Join(dir, dataLink))
		switch {
		case err == nil:
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			}
			from = target
		default:
			// No "..data" link (a plain folder: files written by hand or
			// by a test): read the folder as it is.
		}
		certPEM, err = os.ReadFile(filepath.Join(from, certFile))
		if err == nil {
			keyPEM, err = os.ReadFile(filepath.Join(from, keyFile))
		}
		if err == nil {
			return certPEM, keyPEM, nil
		}
		if from == dir || !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		// The folder the link pointed to was removed by the next update
		// between reading the link and the files: read the link again.
	}
	return nil, nil, ErrIssuerFilesChanging
}

// Issuer is a loaded, verified issuer: the intermediate CA that signs leaf
// certificates, its key, and the chain from it up to (not including) one of
// the trust anchors.
type Issuer struct {
	// Cert is the issuer's certificate.
	Cert *x509.Certificate
	// Chain holds the DER certificates a leaf's holder presents after the
	// leaf: the issuer first, then any further intermediates, ending just
	// below a trust anchor.
	Chain [][]byte
	// NotAfter is the earliest expiry of any certificate from the issuer up
	// to and including the anchor: no leaf may outlive it.
	NotAfter time.Time
	// Digest identifies the certificate and key files this issuer came from.
	Digest [sha256.Size]byte

	signer crypto.Signer
}

// ContentDigest returns the digest identifying a certificate and key pair of files.
func ContentDigest(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(certPEM))
	h.Write(certPEM)
	h.Write(keyPEM)
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d
}

// NewIssuer parses an issuer certificate (PEM; the issuer first, optionally
// followed by the intermediates above it) and its private key (PEM: PKCS#8,
// SEC 1 EC or PKCS#1 RSA), and verifies at now that it is a CA whose
// certificate chains to anchors and that the key belongs to it.
func NewIssuer(certPEM, keyPEM []byte, anchors *Anchors, now time.Time) (*Issuer, error) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("issuer certificate %q is not a CA", cert.Subject.String())
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuer certificate %q may not sign certificates (no certSign key usage)", cert.Subject.String())
	}
	signer, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("issuer key does not belong to the issuer certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         anchors.Pool(),
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("issuer certificate %q does not chain to the trust anchors: %w", cert.Subject.String(), err)
	}
	chain := chains[0] // issuer, intermediates..., anchor
	iss := &Issuer{Cert: cert, signer: signer, Digest: ContentDigest(certPEM, keyPEM)}
	for i, c := range chain {
		if i == 0 || c.NotAfter.Before(iss.NotAfter) {
			iss.NotAfter = c.NotAfter
		}
		if i < len(chain)-1 && !anchors.contains(c) {
			iss.Chain = append(iss.Chain, c.Raw)
		}
	}
	if len(iss.Chain) == 0 {
		// The issuer is itself an anchor: it is the whole chain.
		iss.Chain = [][]byte{cert.Raw}
	}
	return iss, nil
}

// ValidAt reports why the issuer cannot sign at t, or nil if it can.
func (i *Issuer) ValidAt(t time.Time) error {
	switch {
	case t.Before(i.Cert.NotBefore):
		return fmt.Errorf("issuer certificate is not valid before %s", i.Cert.NotBefore.UTC().Format(time.RFC3339))
	case !t.Before(i.NotAfter):
		return fmt.Errorf("issuer chain expired at %s", i.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func parseCertificates(certPEM []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("issuer certificate file: PEM block %q is not a CERTIFICATE", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("issuer certificate file: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("issuer certificate file: no PEM certificate found")
	}
	return certs, nil
}

func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("issuer key file: no PEM private key found")
		}
		var (
			key any
			err error
		)
		switch b.Type {
		case "EC PARAMETERS":
			continue // written before the key by `openssl ecparam -genkey`
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			return nil, fmt.Errorf("issuer key file: PEM block %q is not a private key", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("issuer key file: %w", err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("issuer key file: unsupported key type %T", key)
		}
	}
}
