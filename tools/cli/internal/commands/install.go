package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/render"
	"github.com/linkerd-go/linkerd-go/tools/cli/pki"
)

const installUsage = `install [--crds] [flags]

Renders the mesh's Helm charts (built into this binary) to stdout, as
"helm template" renders them, for kubectl:

    linkerd install --crds | kubectl apply -f -
    linkerd install | kubectl apply -f -

--crds renders the linkerd-crds chart. Otherwise the control plane is
rendered (linkerd-control-plane), preceded by its Namespace. Without
certificates, a trust anchor (root.linkerd.<trust-domain>) and an issuer
(identity.linkerd.<trust-domain>) are generated: ECDSA P-256, valid one
year. Give your own with the --identity-* flags, or let cert-manager write
the issuer Secret with --identity-external-issuer.

Flags:`

// installOptions are the parsed flags of install.
type installOptions struct {
	crds              bool
	ha                bool
	valueFiles        stringList
	set               stringList
	setFile           stringList
	anchorsFile       string
	issuerCertFile    string
	issuerKeyFile     string
	externalIssuer    bool
	controlPlaneNS    string
	kubeVersion       string
	skipNamespace     bool
	issuerLifetime    time.Duration
	now               func() time.Time
	readFile          func(string) ([]byte, error)
	generateIssuerPKI func(ns, td string, now time.Time, lifetime time.Duration) (pki.Credentials, error)
}

func runInstall(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o := installOptions{now: time.Now, readFile: os.ReadFile, generateIssuerPKI: pki.Generate}
	fs := newFlagSet("install", installUsage, stderr)
	fs.BoolVar(&o.crds, "crds", false, "render the linkerd-crds chart (install it first)")
	fs.BoolVar(&o.ha, "ha", false, "use the chart's values-ha.yaml (3 replicas, disruption budgets, anti-affinity, webhook failurePolicy Fail)")
	fs.Var(&o.valueFiles, "f", "a values file (repeatable; later files win)")
	fs.Var(&o.valueFiles, "values", "same as -f")
	fs.Var(&o.set, "set", "set values: key1=val1,key2=val2 (repeatable, Helm syntax)")
	fs.Var(&o.setFile, "set-file", "set a value from a file: key=path (repeatable)")
	fs.StringVar(&o.anchorsFile, "identity-trust-anchors-file", "", "PEM file of the trust anchor(s) (identityTrustAnchorsPEM)")
	fs.StringVar(&o.issuerCertFile, "identity-issuer-certificate-file", "", "PEM file of the issuer certificate (identity.issuer.tls.crtPEM)")
	fs.StringVar(&o.issuerKeyFile, "identity-issuer-key-file", "", "PEM file of the issuer private key (identity.issuer.tls.keyPEM)")
	fs.BoolVar(&o.externalIssuer, "identity-external-issuer", false, "the issuer Secret linkerd-identity-issuer (kubernetes.io/tls) is written by something else, e.g. cert-manager (identity.issuer.scheme=kubernetes.io/tls); needs --identity-trust-anchors-file")
	fs.StringVar(&o.controlPlaneNS, "linkerd-namespace", defaultControlPlaneNS, "namespace of the control plane")
	fs.StringVar(&o.controlPlaneNS, "L", defaultControlPlaneNS, "short for --linkerd-namespace")
	fs.StringVar(&o.kubeVersion, "kube-version", render.DefaultKubeVersion, "Kubernetes version the templates see (as helm template --kube-version)")
	fs.BoolVar(&o.skipNamespace, "skip-namespace", false, "do not print the control plane's Namespace before the control plane")
	fs.DurationVar(&o.issuerLifetime, "identity-issuer-lifetime", pki.DefaultLifetime, "lifetime of the generated trust anchor and issuer")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	out, err := o.render()
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, out)
	return err
}

// render returns the manifests install prints.
func (o installOptions) render() (string, error) {
	if o.crds {
		if o.ha || len(o.valueFiles) > 0 || len(o.setFile) > 0 || o.anchorsFile != "" || o.issuerCertFile != "" || o.issuerKeyFile != "" || o.externalIssuer {
			return "", fmt.Errorf("%w: --crds takes only --set and -L", errUsage)
		}
		vals, err := render.Values{Set: o.set, ReadFile: o.readFile}.Merge()
		if err != nil {
			return "", fmt.Errorf("%w: %v", errUsage, err)
		}
		return render.Render(render.Options{Chart: render.CRDsChart, Namespace: o.controlPlaneNS, KubeVersion: o.kubeVersion, Values: vals})
	}
	files := []string(o.valueFiles)
	readFile := o.readFile
	if o.ha {
		ha, err := render.ChartFile(nil, render.ControlPlaneChart, "values-ha.yaml")
		if err != nil {
			return "", err
		}
		const haName = "\x00values-ha.yaml"
		files = append([]string{haName}, files...)
		readFile = func(name string) ([]byte, error) {
			if name == haName {
				return ha, nil
			}
			return o.readFile(name)
		}
	}
	vals, err := render.Values{Files: files, Set: o.set, SetFile: o.setFile, ReadFile: readFile}.Merge()
	if err != nil {
		return "", fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := o.identityValues(vals); err != nil {
		return "", err
	}
	manifests, err := render.Render(render.Options{Chart: render.ControlPlaneChart, Namespace: o.controlPlaneNS, KubeVersion: o.kubeVersion, Values: vals})
	if err != nil {
		return "", err
	}
	if o.skipNamespace {
		return manifests, nil
	}
	return namespaceManifest(o.controlPlaneNS) + manifests, nil
}

// identityValues applies the --identity-* flags to vals and generates the
// trust anchor and issuer when none are given.
func (o installOptions) identityValues(vals map[string]any) error {
	set := func(v string, keys ...string) {
		m := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	get := func(keys ...string) string {
		m := vals
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				return ""
			}
			m = next
		}
		s, _ := m[keys[len(keys)-1]].(string)
		return s
	}
	for _, f := range []struct {
		file string
		keys []string
	}{
		{o.anchorsFile, []string{"identityTrustAnchorsPEM"}},
		{o.issuerCertFile, []string{"identity", "issuer", "tls", "crtPEM"}},
		{o.issuerKeyFile, []string{"identity", "issuer", "tls", "keyPEM"}},
	} {
		if f.file == "" {
			continue
		}
		b, err := o.readFile(f.file)
		if err != nil {
			return err
		}
		set(string(b), f.keys...)
	}
	if o.externalIssuer {
		set(mesh.IssuerSchemeKubernetes, "identity", "issuer", "scheme")
	}
	anchors := get("identityTrustAnchorsPEM")
	crt, key := get("identity", "issuer", "tls", "crtPEM"), get("identity", "issuer", "tls", "keyPEM")
	external := get("identity", "issuer", "scheme") == mesh.IssuerSchemeKubernetes
	switch {
	case external && anchors == "":
		return fmt.Errorf("%w: an external issuer needs the trust anchors it chains to: --identity-trust-anchors-file", errUsage)
	case external:
		return nil
	case anchors == "" && crt == "" && key == "":
		td := get("identityTrustDomain")
		if td == "" {
			td = "cluster.local"
		}
		creds, err := o.generateIssuerPKI(o.controlPlaneNS, td, o.now(), o.issuerLifetime)
		if err != nil {
			return fmt.Errorf("generate the trust anchor and issuer: %w", err)
		}
		set(string(creds.TrustAnchorPEM), "identityTrustAnchorsPEM")
		set(string(creds.IssuerCertPEM), "identity", "issuer", "tls", "crtPEM")
		set(string(creds.IssuerKeyPEM), "identity", "issuer", "tls", "keyPEM")
		return nil
	case anchors == "" || crt == "" || key == "":
		return fmt.Errorf("%w: give the trust anchors, the issuer certificate and the issuer key together (--identity-trust-anchors-file, --identity-issuer-certificate-file, --identity-issuer-key-file), or none to generate them", errUsage)
	}
	if err := pki.CheckIssuer([]byte(anchors), []byte(crt), []byte(key), o.now()); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// namespaceManifest is the control plane's Namespace: excluded from
// injection and from the webhook, and allowed to run proxy-init (which needs
// NET_ADMIN and NET_RAW).
func namespaceManifest(ns string) string {
	return fmt.Sprintf(`---
# Source: linkerd install
apiVersion: v1
kind: Namespace
metadata:
  name: %s
  annotations:
    linkerd.io/inject: disabled
  labels:
    linkerd.io/is-control-plane: "true"
    config.linkerd.io/admission-webhooks: disabled
    linkerd.io/control-plane-ns: %s
    pod-security.kubernetes.io/enforce: privileged
`, ns, ns)
}
