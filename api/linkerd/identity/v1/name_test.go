package identityv1

import (
	"errors"
	"strings"
	"testing"
)

func TestNameRoundTrip(t *testing.T) {
	for _, n := range []Name{
		{"web", "emojivoto", "linkerd", "cluster.local"},
		{"default", "default", "linkerd", "cluster.local"},
		{"a", "b", "c", "d"},
		{"serviceaccount", "identity", "identity", "serviceaccount.identity"},
		{strings.Repeat("s", 63), strings.Repeat("n", 63), "linkerd", "example.org"},
	} {
		s := n.String()
		got, err := ParseName(s)
		if err != nil {
			t.Errorf("ParseName(%q): %v", s, err)
			continue
		}
		if got != n {
			t.Errorf("ParseName(%q) = %+v, want %+v", s, got, n)
		}
	}
}

func TestNameString(t *testing.T) {
	n := Name{ServiceAccount: "web", Namespace: "emojivoto", ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"}
	if got, want := n.String(), "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := n.IssuerName(), "identity.linkerd.cluster.local"; got != want {
		t.Errorf("IssuerName() = %q, want %q", got, want)
	}
}

func TestParseNameRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"web.emojivoto.svc.cluster.local",
		"web.serviceaccount.identity.linkerd.cluster.local",             // no namespace
		"web.x.emojivoto.serviceaccount.identity.linkerd.cluster.local", // dotted workload part
		".emojivoto.serviceaccount.identity.linkerd.cluster.local",
		"web..serviceaccount.identity.linkerd.cluster.local",
		"web.emojivoto.serviceaccount.identity.linkerd", // no trust domain
		"web.emojivoto.serviceaccount.identity..cluster.local",
		"web.emojivoto.serviceaccount.identity.linkerd.",
		"web.emojivoto.serviceaccount.identity.linkerd.cluster.local.", // trailing dot
		"Web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
		"web.emojivoto.serviceaccount.identity.linkerd.cluster_local",
		"we b.emojivoto.serviceaccount.identity.linkerd.cluster.local",
		"*.emojivoto.serviceaccount.identity.linkerd.cluster.local",
		"web.emojivoto.ServiceAccount.identity.linkerd.cluster.local",
		strings.Repeat("a", 64) + ".emojivoto.serviceaccount.identity.linkerd.cluster.local",
		"web.emojivoto.serviceaccount.identity.linkerd." + strings.Repeat(strings.Repeat("d", 60)+".", 4) + "local",
		"web.emojivoto.serviceaccount.identity.linkerd.cluster.local\x00",
	} {
		n, err := ParseName(s)
		if err == nil {
			t.Errorf("ParseName(%q) = %+v, want an error", s, n)
			continue
		}
		if !errors.Is(err, ErrMalformedName) {
			t.Errorf("ParseName(%q) error %v does not wrap ErrMalformedName", s, err)
		}
	}
}

func TestValidateLength(t *testing.T) {
	// Every part is valid on its own, but the whole is too long for a DNS name.
	n := Name{
		ServiceAccount:        strings.Repeat("s", 63),
		Namespace:             strings.Repeat("n", 63),
		ControlPlaneNamespace: strings.Repeat("c", 63),
		TrustDomain:           strings.Repeat("d", 60) + "." + strings.Repeat("d", 60),
	}
	if err := n.Validate(); !errors.Is(err, ErrMalformedName) {
		t.Errorf("Validate() = %v, want ErrMalformedName", err)
	}
}

func TestServiceAccountUsername(t *testing.T) {
	u := ServiceAccountUsername("emojivoto", "web")
	if u != "system:serviceaccount:emojivoto:web" {
		t.Fatalf("ServiceAccountUsername = %q", u)
	}
	ns, sa, err := ParseServiceAccountUsername(u)
	if err != nil || ns != "emojivoto" || sa != "web" {
		t.Fatalf("ParseServiceAccountUsername(%q) = %q, %q, %v", u, ns, sa, err)
	}
}

func TestParseServiceAccountUsernameRejects(t *testing.T) {
	for _, u := range []string{
		"",
		"admin",
		"system:node:worker-1",
		"system:serviceaccount:",
		"system:serviceaccount:emojivoto",
		"system:serviceaccount::web",
		"system:serviceaccount:emojivoto:",
		"system:serviceaccount:emojivoto:web:extra",
		"system:serviceaccount:emojivoto:web.v2",
		"system:serviceaccount:Emojivoto:web",
		"system:serviceaccounts:emojivoto",
	} {
		if ns, sa, err := ParseServiceAccountUsername(u); err == nil {
			t.Errorf("ParseServiceAccountUsername(%q) = %q, %q, want an error", u, ns, sa)
		}
	}
}

// FuzzParseName checks that parsing never panics and that whatever parses
// prints back to exactly the input, so that no two strings name one identity.
func FuzzParseName(f *testing.F) {
	f.Add("web.emojivoto.serviceaccount.identity.linkerd.cluster.local")
	f.Add("a.b.serviceaccount.identity.c.d")
	f.Add("web.emojivoto.serviceaccount.identity.linkerd")
	f.Add("x.serviceaccount.serviceaccount.identity.identity.td")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if got := n.String(); got != s {
			t.Fatalf("ParseName(%q).String() = %q", s, got)
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("ParseName(%q) returned a name that does not validate: %v", s, err)
		}
	})
}
