package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readBase(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../inject/testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, readBase(t), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// Defaults fill what the file leaves out.
	if c.Proxy.UID != 2102 || c.Proxy.Ports.Inbound != 4143 || !c.Proxy.NativeSidecar || c.Proxy.DefaultInboundPolicy != "all-unauthenticated" {
		t.Errorf("defaults not applied: %+v", c.Proxy)
	}
	if got := c.DestinationAddress(); got != "linkerd-dst-headless.linkerd.svc.cluster.local.:8086" {
		t.Errorf("destination address %q", got)
	}
	if got := c.IdentityName("web", "emojivoto").String(); got != "web.emojivoto.serviceaccount.identity.linkerd.cluster.local" {
		t.Errorf("identity name %q", got)
	}
	if len(c.TrustRootSHA256()) != 64 {
		t.Errorf("trust root hash %q", c.TrustRootSHA256())
	}
}

func TestStrictDecoding(t *testing.T) {
	for name, extra := range map[string]string{
		"unknown field":        "proxy:\n  colour: blue\n",
		"unknown top field":    "proxyInjector: {}\n",
		"wrong type":           "disableIPv6: maybe\n",
		"duplicate field":      "clusterDomain: a.local\nclusterDomain: b.local\n",
		"string for structure": "proxy: fast\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(append(readBase(t), extra...)); err == nil {
				t.Errorf("accepted %q", extra)
			}
		})
	}
	if _, err := Parse(make([]byte, MaxFileSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		yaml, field string
	}{
		{"apiVersion: injector.linkerd.io/v2\n", "apiVersion"},
		{"kind: Config\n", "kind"},
		{"controlPlaneNamespace: Linkerd\n", "controlPlaneNamespace"},
		{"clusterDomain: bad_domain\n", "clusterDomain"},
		{"identityTrustAnchorsPEM: nope\n", "identityTrustAnchorsPEM"},
		{"clusterNetworks: 10.0.0.0/40\n", "clusterNetworks"},
		{"controlPlane:\n  identity:\n    address: identity\n    serviceAccount: linkerd-identity\n", "controlPlane.identity.address"},
		{"controlPlane:\n  destination:\n    serviceAccount: a.b\n", "controlPlane.destination.serviceAccount"},
		{"proxy:\n  image:\n    name: UPPER\n", "proxy.image.name"},
		{"proxy:\n  image:\n    version: 'a:b'\n", "proxy.image.version"},
		{"proxy:\n  image:\n    pullPolicy: Sometimes\n", "proxy.image.pullPolicy"},
		{"proxy:\n  ports:\n    admin: 4143\n", "proxy.ports.admin"},
		{"proxy:\n  ports:\n    inbound: 70000\n", "proxy.ports.inbound"},
		{"proxy:\n  uid: 0\n", "proxy.uid"},
		{"proxy:\n  gid: -2\n", "proxy.gid"},
		{"proxy:\n  logLevel: loud\n", "proxy.logLevel"},
		{"proxy:\n  logFormat: xml\n", "proxy.logFormat"},
		{"proxy:\n  defaultInboundPolicy: allow\n", "proxy.defaultInboundPolicy"},
		{"proxy:\n  opaquePorts: 0\n", "proxy.opaquePorts"},
		{"proxy:\n  awaitCommand: []\n", "proxy.awaitCommand"},
		{"proxy:\n  shutdownGracePeriod: 2d\n", "proxy.shutdownGracePeriod"},
		{"proxy:\n  resources:\n    memory:\n      request: 1Gi\n      limit: 1Mi\n", "proxy.resources.memory"},
		{"proxy:\n  resources:\n    cpu:\n      request: lots\n", "proxy.resources.cpu.request"},
		{"proxyInit:\n  ignoreInboundPorts: 80,,81\n", "proxyInit.ignoreInboundPorts"},
		{"proxyInit:\n  skipSubnets: 10.0.0.1\n", "proxyInit.skipSubnets"},
		{"proxyInit:\n  logLevel: trace\n", "proxyInit.logLevel"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c, err := Parse(readBase(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.UnmarshalStrict([]byte(tc.yaml), &c); err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("error %v, want one about %s", err, tc.field)
			}
		})
	}
	// The defaults alone lack trust anchors.
	d := Default()
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "identityTrustAnchorsPEM") {
		t.Errorf("defaults without anchors: %v", err)
	}
}

func TestTrustAnchors(t *testing.T) {
	c, err := Parse(readBase(t))
	if err != nil {
		t.Fatal(err)
	}
	one := c.IdentityTrustAnchorsPEM
	if certs, err := ParseTrustAnchors(one + one); err != nil || len(certs) != 2 {
		t.Errorf("bundle of two: %d, %v", len(certs), err)
	}
	if _, err := ParseTrustAnchors(one + "trailing"); err == nil {
		t.Error("accepted trailing text")
	}
	if _, err := ParseTrustAnchors("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"); err == nil {
		t.Error("accepted a key")
	}
}

func TestValues(t *testing.T) {
	good := map[string]func(string) error{
		"warn,linkerd=info":          ValidateProxyLogLevel,
		"debug,linkerd::proxy=trace": ValidateProxyLogLevel,
		"cr.l5d.io/linkerd/proxy":    ValidateImageName,
		"localhost:5000/proxy":       ValidateImageName,
		"proxy":                      ValidateImageName,
		"v2.1.0-rc.1":                ValidateImageVersion,
	}
	for v, f := range good {
		if err := f(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	bad := map[string]func(string) error{
		"warn,":                     ValidateProxyLogLevel,
		"=info":                     ValidateProxyLogLevel,
		"linkerd=loud":              ValidateProxyLogLevel,
		"cr.l5d.io/linkerd/proxy:1": ValidateImageName,
		"proxy@sha256:abc":          ValidateImageName,
		"":                          ValidateImageVersion,
		"-v1":                       ValidateImageVersion,
	}
	for v, f := range bad {
		if err := f(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	if _, err := ParseShutdownGracePeriod("500ms"); err == nil {
		t.Error("grace period under 1s accepted")
	}
	if _, err := ParseQuantity("-1"); err == nil {
		t.Error("negative quantity accepted")
	}
	if ps, err := ParseSubnets(" 10.1.2.3/8 , fd00::1/8"); err != nil || FormatSubnets(ps) != "10.0.0.0/8,fd00::/8" {
		t.Errorf("subnets %v, %v", ps, err)
	}
}
