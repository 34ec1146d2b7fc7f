package profile

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

func spec(t *testing.T, doc string) *Spec {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	s, err := FromUnstructured(&unstructured.Unstructured{Object: map[string]any{"spec": obj}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		name, spec string
		want       string // protojson of the profile
		problems   int
	}{{
		name: "empty spec gets the default budget",
		spec: `{}`,
		want: `{"fullyQualifiedName":"web.ns.svc.cluster.local","retryBudget":{"retryRatio":0.2,"minRetriesPerSecond":10,"ttl":"10s"}}`,
	}, {
		name: "method and path together mean all",
		spec: `{routes: [{name: r, condition: {method: GET, pathRegex: "/a/\\d+"}}]}`,
		want: `{"fullyQualifiedName":"web.ns.svc.cluster.local","routes":[{"name":"r","condition":{"all":{"matches":[{"method":{"method":"GET"}},{"path":{"regex":"/a/\\d+"}}]}}}],"retryBudget":{"retryRatio":0.2,"minRetriesPerSecond":10,"ttl":"10s"}}`,
	}, {
		name: "any, and not as an object or a list",
		spec: `{routes: [{name: r, condition: {any: [{method: PUT}, {not: {method: GET}}, {not: [{method: HEAD}, {method: POST}]}]}}]}`,
		want: `{"fullyQualifiedName":"web.ns.svc.cluster.local","routes":[{"name":"r","condition":{"any":{"matches":[{"method":{"method":"PUT"}},{"not":{"method":{"method":"GET"}}},{"not":{"any":{"matches":[{"method":{"method":"HEAD"}},{"method":{"method":"POST"}}]}}}]}}}],"retryBudget":{"retryRatio":0.2,"minRetriesPerSecond":10,"ttl":"10s"}}`,
	}, {
		name: "response classes with open status bounds",
		spec: `{routes: [{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {min: 500}}, isFailure: true}, {condition: {not: {status: {max: 299}}}}]}]}`,
		want: `{"fullyQualifiedName":"web.ns.svc.cluster.local","routes":[{"name":"r","condition":{"method":{"method":"GET"}},"responseClasses":[{"condition":{"status":{"min":500,"max":599}},"isFailure":true},{"condition":{"not":{"status":{"min":100,"max":299}}}}]}],"retryBudget":{"retryRatio":0.2,"minRetriesPerSecond":10,"ttl":"10s"}}`,
	}, {
		name:     "bad parts are left out",
		spec:     `{routes: [{name: a, condition: {pathRegex: "("}}, {name: b, condition: {method: GET}, timeout: soon}, {name: c, condition: {method: GET}, responseClasses: [{condition: {status: {min: 600}}}]}], retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 1, ttl: never}, dstOverrides: [{authority: x, weight: -1}]}`,
		want:     `{"fullyQualifiedName":"web.ns.svc.cluster.local","retryBudget":{"retryRatio":0.2,"minRetriesPerSecond":10,"ttl":"10s"}}`,
		problems: 5,
	}, {
		name: "budget, timeout and split weights",
		spec: `{routes: [{name: r, condition: {method: GET}, isRetryable: true, timeout: 250ms}], retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 3, ttl: 1m}, dstOverrides: [{authority: "a:80", weight: 1}, {authority: "b:80", weight: "250m"}, {authority: "c:80", weight: 0}]}`,
		want: `{"fullyQualifiedName":"web.ns.svc.cluster.local","routes":[{"name":"r","condition":{"method":{"method":"GET"}},"isRetryable":true,"timeout":"0.250s"}],"retryBudget":{"retryRatio":0.5,"minRetriesPerSecond":3,"ttl":"60s"},"dstOverrides":[{"authority":"a:80","weight":10000},{"authority":"b:80","weight":2500},{"authority":"c:80"}]}`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := Translate("web.ns.svc.cluster.local", spec(t, tt.spec))
			if len(problems) != tt.problems {
				t.Errorf("problems %v, want %d", problems, tt.problems)
			}
			want := &destinationv1.Profile{}
			if err := protojson.Unmarshal([]byte(tt.want), want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", protojson.Format(got), protojson.Format(want))
			}
			// Servable leaves out the same parts, and what it keeps
			// translates to the same profile without a problem.
			servable, problems := Servable(spec(t, tt.spec))
			if len(problems) != tt.problems {
				t.Errorf("Servable: problems %v, want %d", problems, tt.problems)
			}
			again, problems := Translate("web.ns.svc.cluster.local", servable)
			if len(problems) != 0 || !proto.Equal(again, want) {
				t.Errorf("servable spec: problems %v, profile %s", problems, protojson.Format(again))
			}
		})
	}
}

func TestDeepConditionsRefused(t *testing.T) {
	doc := `{routes: [{name: r, condition: ` + strings.Repeat(`{not: `, 40) + `{method: GET}` + strings.Repeat(`}`, 40) + `}]}`
	p, problems := Translate("x", spec(t, doc))
	if len(p.GetRoutes()) != 0 || len(problems) != 1 {
		t.Fatalf("routes %v problems %v, want the route refused", p.GetRoutes(), problems)
	}
}

func TestOpaquePortNumbers(t *testing.T) {
	s := spec(t, `{opaquePorts: ["3306", "x", "0", "70000", "8080"]}`)
	got := s.OpaquePortNumbers()
	if len(got) != 2 || got[0] != 3306 || got[1] != 8080 {
		t.Fatalf("got %v", got)
	}
}
