package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
)

// ControlPlaneNamespace is where the charts are installed.
const ControlPlaneNamespace = "linkerd"

// Helm runs a helm binary against a cluster, in a working folder, with its
// caches and configuration in a folder of its own.
type Helm struct {
	// Bin is the helm binary; Kubeconfig the cluster's; Dir the working
	// folder (where ca.crt, issuer.crt and issuer.key are); Home holds
	// helm's cache, config and data.
	Bin, Kubeconfig, Dir, Home string
}

// Run runs helm with args and returns its combined output; an error
// carries the output.
func (h Helm) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.Bin, args...)
	cmd.Dir = h.Dir
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+h.Kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(h.Home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.Home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.Home, "data"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// PKI file names, as in the install steps.
const (
	TrustAnchorFile = "ca.crt"
	IssuerCertFile  = "issuer.crt"
	IssuerKeyFile   = "issuer.key"
)

// EnsurePKI makes sure dir holds a trust anchor and an issuer (ca.crt,
// issuer.crt, issuer.key): it keeps the ones there if they chain and stay
// valid for more than minValidity, else generates new ones (one year,
// pki.Generate) and reports it. Keeping them is what makes a second install
// an upgrade that restarts nothing.
func EnsurePKI(dir string, now time.Time, minValidity time.Duration) (generated bool, err error) {
	read := func(name string) []byte {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return b
	}
	anchor, crt, key := read(TrustAnchorFile), read(IssuerCertFile), read(IssuerKeyFile)
	if anchor != nil && crt != nil && key != nil && pki.CheckIssuer(anchor, crt, key, now) == nil {
		if certs, err := pki.ParseCertificates(crt); err == nil && certs[0].NotAfter.After(now.Add(minValidity)) {
			return false, nil
		}
	}
	creds, err := pki.Generate(ControlPlaneNamespace, "cluster.local", now, 0)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	for name, data := range map[string][]byte{TrustAnchorFile: creds.TrustAnchorPEM, IssuerCertFile: creds.IssuerCertPEM, IssuerKeyFile: creds.IssuerKeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return false, err
		}
	}
	return true, nil
}

// InstallMesh installs or upgrades both charts from the checkout at root
// with the values of the README's install steps (helm upgrade --install, so running it again
// changes nothing), with h.Dir holding the PKI files.
func InstallMesh(ctx context.Context, h Helm, root string, log io.Writer) error {
	if h.Dir == "" {
		return errors.New("install: no folder with the certificates")
	}
	charts := filepath.Join(root, "deploy", "charts")
	steps := [][]string{
		{"upgrade", "--install", "linkerd-crds", filepath.Join(charts, "linkerd-crds"), "-n", ControlPlaneNamespace, "--create-namespace"},
		{"upgrade", "--install", "linkerd-control-plane", "-n", ControlPlaneNamespace,
			"--set-file", "identityTrustAnchorsPEM=" + TrustAnchorFile,
			"--set-file", "identity.issuer.tls.crtPEM=" + IssuerCertFile,
			"--set-file", "identity.issuer.tls.keyPEM=" + IssuerKeyFile,
			filepath.Join(charts, "linkerd-control-plane")},
	}
	for _, args := range steps {
		fmt.Fprintf(log, "demo: helm %s\n", strings.Join(args[:3], " "))
		if _, err := h.Run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}
