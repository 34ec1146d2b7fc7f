package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certLifetime is long enough for any dev session; the PKI is regenerated
// when the state folder is wiped.
const certLifetime = 365 * 24 * time.Hour

// identity is a static-token user of the API server and its kubeconfig.
type identity struct {
	file   string // kubeconfig/<file>.conf
	user   string
	groups string
}

func (c *Cluster) identities() []identity {
	return []identity{
		{"admin", "dev-admin", "system:masters"},
		{"controller-manager", "system:kube-controller-manager", ""},
		{"scheduler", "system:kube-scheduler", ""},
		{"kubelet", "system:node:" + c.NodeName, "system:nodes"},
		{"kube-proxy", "system:kube-proxy", ""},
	}
}

// ensurePKI writes the certificates, keys, token file and kubeconfigs once;
// later ups reuse them so kubeconfigs handed out stay valid.
func (c *Cluster) ensurePKI() error {
	dir := c.path("pki")
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, caKey, err := newCA("linkerd-go-dev-ca")
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "ca", ca, caKey); err != nil {
		return err
	}
	serving, servingKey, err := newLeaf(ca, caKey, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(NodeIP), net.ParseIP(firstServiceIP())})
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "apiserver", serving, servingKey); err != nil {
		return err
	}
	// The API server's client certificate towards kubelets (logs, exec).
	kc, kcKey, err := newLeaf(ca, caKey, "kube-apiserver-kubelet-client", []string{"system:masters"}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "apiserver-kubelet-client", kc, kcKey); err != nil {
		return err
	}
	// Aggregation layer: a separate CA, as kubeadm does.
	fpCA, fpCAKey, err := newCA("front-proxy-ca")
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "front-proxy-ca", fpCA, fpCAKey); err != nil {
		return err
	}
	fp, fpKey, err := newLeaf(fpCA, fpCAKey, "front-proxy-client", nil, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return err
	}
	if err := writeCertKey(dir, "front-proxy-client", fp, fpKey); err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", saPub); err != nil {
		return err
	}
	// Components authenticate with static tokens: simpler than five more
	// client certificates, and the node still gets the Node authorizer.
	var tokens []byte
	kubeconfigDir := c.path("kubeconfig")
	if err := os.MkdirAll(kubeconfigDir, 0o700); err != nil {
		return err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	for _, id := range c.identities() {
		token := rand.Text()
		tokens = fmt.Appendf(tokens, "%s,%s,%s,%q\n", token, id.user, id.user, id.groups)
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["dev"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://%s:%d", NodeIP, APIServerPort), CertificateAuthorityData: caPEM}
		cfg.AuthInfos[id.user] = &clientcmdapi.AuthInfo{Token: token}
		cfg.Contexts["dev"] = &clientcmdapi.Context{Cluster: "dev", AuthInfo: id.user}
		cfg.CurrentContext = "dev"
		if err := clientcmd.WriteToFile(*cfg, filepath.Join(kubeconfigDir, id.file+".conf")); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), tokens, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "complete"), nil, 0o600)
}

// firstServiceIP is the kubernetes Service's address: the first of the range.
func firstServiceIP() string {
	_, n, _ := net.ParseCIDR(ServiceCIDR)
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1).String()
}

func newCA(cn string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newLeaf(ca *x509.Certificate, caKey crypto.Signer, cn string, orgs []string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeCertKey(dir, name string, cert *x509.Certificate, key crypto.Signer) error {
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", cert.Raw); err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".key"), "EC PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
