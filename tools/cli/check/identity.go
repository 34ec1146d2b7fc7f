package check

// The linkerd-identity checks: the trust anchors and the issuer.

import (
	"context"
	"crypto/x509"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
)

// certValidity checks that a certificate is valid now and does not expire
// within the warning window.
func (r *runner) certValidNow(what string, c *x509.Certificate) error {
	if r.now.Before(c.NotBefore) {
		return fail("check the clocks, or make a new certificate", "%s %q is not valid before %s", what, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !r.now.Before(c.NotAfter) {
		return fail("rotate it: https://linkerd.io/2/tasks/replacing_expired_certificates/", "%s %q expired on %s", what, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (r *runner) certNotExpiring(what, hint string, c *x509.Certificate) error {
	left := c.NotAfter.Sub(r.now)
	if left < r.cfg.ExpiryWarning {
		return fail(hint, "%s %q expires in %s (on %s), within %s", what, c.Subject.CommonName, days(left), c.NotAfter.UTC().Format(time.RFC3339), days(r.cfg.ExpiryWarning))
	}
	return nil
}

func (r *runner) checkAnchors(ctx context.Context) error {
	ns := r.cfg.ControlPlaneNamespace
	cm, err := r.cfg.Kube.CoreV1().ConfigMaps(ns).Get(ctx, TrustRootsConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail("install the control plane with its trust anchors (identityTrustAnchorsPEM)", "ConfigMap %s/%s does not exist", ns, TrustRootsConfigMap)
	}
	if err != nil {
		return err
	}
	bundle := cm.Data[mesh.TrustRootsKey]
	certs, err := pki.ParseCertificates([]byte(bundle))
	if err != nil {
		return fail("set identityTrustAnchorsPEM to the PEM trust anchor(s)", "ConfigMap %s key ca-bundle.crt: %v", TrustRootsConfigMap, err)
	}
	for _, c := range certs {
		if err := r.certValidNow("trust anchor", c); err != nil {
			return err
		}
	}
	r.anchors, r.anchorsPEM = certs, bundle
	return nil
}

func (r *runner) checkAnchorsExpiry(context.Context) error {
	for _, c := range r.anchors {
		if err := r.certNotExpiring("trust anchor", "add a new trust anchor to the bundle and rotate the issuer: https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/", c); err != nil {
			return err
		}
	}
	return nil
}

// issuer reads the issuer Secret in either scheme.
func (r *runner) issuer(ctx context.Context) (certPEM, keyPEM []byte, scheme string, err error) {
	ns := r.cfg.ControlPlaneNamespace
	s, err := r.cfg.Kube.CoreV1().Secrets(ns).Get(ctx, IssuerSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil, "", fail("install with an issuer (identity.issuer.tls.*), or let cert-manager write it (scheme kubernetes.io/tls)", "Secret %s/%s does not exist", ns, IssuerSecret)
	}
	if err != nil {
		return nil, nil, "", err
	}
	if c, ok := s.Data[corev1.TLSCertKey]; ok {
		return c, s.Data[corev1.TLSPrivateKeyKey], mesh.IssuerSchemeKubernetes, nil
	}
	if c, ok := s.Data["crt.pem"]; ok {
		return c, s.Data["key.pem"], mesh.IssuerSchemeLinkerd, nil
	}
	return nil, nil, "", fail("the Secret needs tls.crt/tls.key (kubernetes.io/tls) or crt.pem/key.pem (linkerd.io/tls)", "Secret %s/%s has neither tls.crt nor crt.pem", ns, IssuerSecret)
}

func (r *runner) issuerCert(ctx context.Context) (*x509.Certificate, []byte, []byte, string, error) {
	crt, key, scheme, err := r.issuer(ctx)
	if err != nil {
		return nil, nil, nil, "", err
	}
	certs, err := pki.ParseCertificates(crt)
	if err != nil {
		return nil, nil, nil, "", fail("", "issuer Secret %s (%s): %v", IssuerSecret, scheme, err)
	}
	return certs[0], crt, key, scheme, nil
}

func (r *runner) checkIssuer(ctx context.Context) error {
	c, crt, key, scheme, err := r.issuerCert(ctx)
	if err != nil {
		return err
	}
	if err := r.certValidNow("issuer certificate", c); err != nil {
		return err
	}
	if err := pki.CheckIssuer([]byte(r.anchorsPEM), crt, key, r.now); err != nil {
		return fail("the issuer must be signed by a trust anchor in "+TrustRootsConfigMap, "issuer Secret %s (%s): %v", IssuerSecret, scheme, err)
	}
	return nil
}

func (r *runner) checkIssuerExpiry(ctx context.Context) error {
	c, _, _, _, err := r.issuerCert(ctx)
	if err != nil {
		return err
	}
	return r.certNotExpiring("issuer certificate", "rotate the issuer (cert-manager renews it by itself; otherwise: https://linkerd.io/2/tasks/manually-rotating-control-plane-tls-credentials/)", c)
}
