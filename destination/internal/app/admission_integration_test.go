//go:build integration

package app

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
	"github.com/linkerd-go/linkerd-go/tools/testkit/pkitest"
)

// TestPolicyValidatorInRealAPIServer registers destination's policy
// validator with a real kube-apiserver, which calls it over TLS for every
// policy object written in the test's namespace: objects that cannot work
// are refused with the reason, the others stored. (What the CRDs' own
// schemas refuse, such as a Server with two selectors, never reaches it.)
func TestPolicyValidatorInRealAPIServer(t *testing.T) {
	ca := pkitest.NewRoot(t, "policy validator test CA", pkitest.Options{NotAfter: time.Now().Add(24 * time.Hour)})
	leaf := ca.Leaf(t, pkitest.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Lifetime: 24 * time.Hour})
	certPEM, keyPEM := pkitest.PairPEM(t, leaf)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := startDestinationWith(t, shared.Config, lis, "--admission-addr="+lis.Addr().String(),
		"--admission-tls-cert-file="+certFile, "--admission-tls-key-file="+keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The chart's registration, with a URL for the Service and limited to
	// this test's namespace (the API server is shared with other tests).
	url := "https://" + lis.Addr().String() + "/"
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	hooks := r.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_, err = hooks.Create(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-policy-validator-webhook-config-" + r.ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "linkerd-policy-validator.linkerd.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: ca.CertPEM()},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"policy.linkerd.io"}, APIVersions: []string{"*"}, Resources: []string{
					"authorizationpolicies", "httproutes", "meshtlsauthentications", "networkauthentications", "serverauthorizations", "servers",
				}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": r.ns}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	r.check(err)
	t.Cleanup(func() {
		_ = hooks.Delete(context.Background(), "linkerd-policy-validator-webhook-config-"+r.ns, metav1.DeleteOptions{})
	})

	apply := func(apiVersion, kind, name, spec string) error {
		indented := "  " + strings.ReplaceAll(strings.TrimSpace(spec), "\n", "\n  ")
		objs, err := kubetest.DecodeObjects([]byte("apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: " + name + "}\nspec:\n" + indented + "\n"))
		r.check(err)
		_, err = r.policyResource(kind).Create(ctx, objs[0], metav1.CreateOptions{})
		return err
	}
	const badExcept = "networks: [{cidr: 10.0.0.0/8, except: [172.16.0.0/12]}]"
	const refusal = `admission webhook "linkerd-policy-validator.linkerd.io" denied the request: NetworkAuthentication `

	// The API server picks up a new webhook configuration on its own
	// schedule: until it does, the bad Server is stored (and removed again).
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = apply("policy.linkerd.io/v1alpha1", "NetworkAuthentication", "bad-except", badExcept)
		if last == nil {
			return false, r.policyResource("NetworkAuthentication").Delete(ctx, "bad-except", metav1.DeleteOptions{})
		}
		return strings.Contains(last.Error(), refusal), nil
	})
	if err != nil {
		t.Fatalf("the API server never called the validator: %v (last: %v)", err, last)
	}

	for _, c := range []struct {
		apiVersion, kind, name, spec string
		refused                      string // "" = stored
	}{
		{"policy.linkerd.io/v1alpha1", "NetworkAuthentication", "bad-except", badExcept,
			"NetworkAuthentication " + r.ns + `/bad-except: networks: except "172.16.0.0/12" is not inside "10.0.0.0/8"`},
		{"policy.linkerd.io/v1alpha1", "NetworkAuthentication", "bad-cidr", "networks: [{cidr: 10.0.0.0/40}]",
			`networks: cidr "10.0.0.0/40"`},
		{"policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "no-such-kind", "targetRef: {group: policy.linkerd.io, kind: Servers, name: web}\nrequiredAuthenticationRefs: []",
			`targetRef: unsupported kind "Servers"`},
		{"policy.linkerd.io/v1beta3", "Server", "web", "podSelector: {matchLabels: {app: web}}\nport: http\nproxyProtocol: HTTP/1", ""},
		{"policy.linkerd.io/v1beta3", "Server", "web-again", "podSelector: {matchLabels: {app: web}}\nport: http",
			`Server "web" already selects the same pods and port`},
		{"policy.linkerd.io/v1beta3", "Server", "web-admin", "podSelector: {matchLabels: {app: web}}\nport: 9090", ""},
		{"policy.linkerd.io/v1alpha1", "NetworkAuthentication", "cluster", "networks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]", ""},
	} {
		err := apply(c.apiVersion, c.kind, c.name, c.spec)
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s %s refused: %v", c.kind, c.name, err)
		case c.refused != "" && err == nil:
			t.Errorf("%s %s stored, want refused with %q", c.kind, c.name, c.refused)
		case c.refused != "" && !strings.Contains(err.Error(), c.refused):
			t.Errorf("%s %s: %v, want a refusal with %q", c.kind, c.name, err, c.refused)
		}
	}

	// An update is judged too: web-admin moved onto web's port.
	srv, err := r.policyResource("Server").Get(ctx, "web-admin", metav1.GetOptions{})
	r.check(err)
	srv.Object["spec"].(map[string]any)["port"] = "http"
	if _, err := r.policyResource("Server").Update(ctx, srv, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), `Server "web" already selects the same pods and port`) {
		t.Errorf("an update onto another Server's port: %v, want refused", err)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	r.expectMetrics(
		`destination_policy_admission_reviews_total{kind="Server",result="allowed"} 2`,
		`destination_policy_admission_reviews_total{kind="NetworkAuthentication",result="allowed"} 1`,
		`destination_policy_admission_reviews_total{kind="AuthorizationPolicy",result="denied"} 1`,
	)
}
