package policy

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

// FuzzCompute feeds arbitrary policy manifests (in the emoji namespace,
// beside basePods) to the computation, with deny as the configured default.
// It must never panic, and never grant more than the objects say: every
// authorization names an object that exists, an authorization from an
// object that requires an identity or a network carries that requirement,
// and defaults appear only where a Server's accessPolicy or the probes ask.
// The seed corpus is testdata/fuzz/FuzzCompute.
func FuzzCompute(f *testing.F) {
	f.Fuzz(func(t *testing.T, manifest string) {
		objs, err := kubetest.DecodeObjects([]byte(manifest))
		if err != nil {
			return
		}
		store := storeOf(t, basePods)
		for _, u := range objs {
			if u.GetKind() == "Pod" || u.GetKind() == "Namespace" {
				continue
			}
			u.SetNamespace("emoji")
			for _, kind := range []string{KindServer, KindServerAuthorization, KindAuthorizationPolicy, KindMeshTLSAuthentication, KindNetworkAuthentication, KindHTTPRoute} {
				_ = Parse(kind, u, testConfig())
			}
			if err := store.add(u); err != nil {
				return // duplicate names
			}
		}
		cfg := testConfig()
		cfg.DefaultPolicy = Deny
		c := NewComputer(discard(), cfg, store)
		pod := c.Pod("emoji", "web-1")
		for _, port := range []uint16{8080, 9990} {
			srv := c.Compute(pod, port)
			checkGrants(t, objs, srv)
		}
	})
}

func checkGrants(t *testing.T, objs []*unstructured.Unstructured, srv *policyv1.Server) {
	t.Helper()
	byName := func(kind, name string) *unstructured.Unstructured {
		for _, u := range objs {
			if u.GetKind() == kind && u.GetName() == name {
				return u
			}
		}
		return nil
	}
	srvLabels := srv.GetLabels()
	var access string
	if srvLabels["kind"] == "server" {
		s := byName(KindServer, srvLabels["name"])
		if s == nil {
			t.Fatalf("policy from Server %q, which does not exist", srvLabels["name"])
		}
		access, _, _ = unstructured.NestedString(s.Object, "spec", "accessPolicy")
	} else if srvLabels["name"] != string(Deny) {
		t.Fatalf("default server %q, want deny", srvLabels["name"])
	}
	check := func(a *policyv1.Authorization, onProbeRoute bool) {
		l := a.GetLabels()
		meshOnly := a.GetAuthentication().GetMeshTls() != nil
		nets := a.GetNetworks()
		anyNetwork := slices.ContainsFunc(nets, func(n *policyv1.Network) bool {
			p, err := n.GetNet().Prefix()
			return err == nil && p.Bits() == 0
		})
		switch l["kind"] {
		case "default":
			if !(onProbeRoute && l["name"] == "probe") && l["name"] != access {
				t.Fatalf("default authorization %q on a port whose Server asks for %q", l["name"], access)
			}
		case "serverauthorization":
			u := byName(KindServerAuthorization, l["name"])
			if u == nil {
				t.Fatalf("authorization from ServerAuthorization %q, which does not exist", l["name"])
			}
			if open, _, _ := unstructured.NestedBool(u.Object, "spec", "client", "unauthenticated"); !open && !meshOnly {
				t.Fatalf("ServerAuthorization %q requires mesh TLS; served unauthenticated", l["name"])
			}
		case "authorizationpolicy":
			u := byName(KindAuthorizationPolicy, l["name"])
			if u == nil {
				t.Fatalf("authorization from AuthorizationPolicy %q, which does not exist", l["name"])
			}
			refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "requiredAuthenticationRefs")
			for _, r := range refs {
				m, _ := r.(map[string]any)
				kind, _ := m["kind"].(string)
				switch strings.ToLower(kind) {
				case "meshtlsauthentication", "serviceaccount":
					if !meshOnly {
						t.Fatalf("AuthorizationPolicy %q requires an identity; served unauthenticated", l["name"])
					}
				case "networkauthentication":
					if anyNetwork {
						t.Fatalf("AuthorizationPolicy %q requires a network; served for every address", l["name"])
					}
				}
			}
		default:
			t.Fatalf("authorization of unknown kind %q", l["kind"])
		}
	}
	for _, a := range srv.GetAuthorizations() {
		check(a, false)
	}
	for _, r := range srv.GetHttpRoutes() {
		for _, a := range r.GetAuthorizations() {
			check(a, r.GetLabels()["name"] == "probe" && r.GetLabels()["kind"] == "default")
		}
	}
}
