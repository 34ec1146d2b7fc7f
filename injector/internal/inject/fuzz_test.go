package inject

import (
	"encoding/json"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/injector/internal/config"
)

// FuzzAnnotations sets one override on the pod and another on the
// namespace, to any values: Inject must never panic, and an injected pod
// must come out well formed (the patch applies, one proxy, requests within
// limits, an identity name).
func FuzzAnnotations(f *testing.F) {
	data, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		f.Fatal(err)
	}
	keys := append(OverrideKeys(), mesh.AnnotationInject)
	f.Add(uint8(3), "80,8000-8100", uint8(6), "http")
	f.Add(uint8(9), "2", uint8(10), "1")
	f.Fuzz(func(t *testing.T, podKey uint8, podValue string, nsKey uint8, nsValue string) {
		pod := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "web", Annotations: map[string]string{
				keys[int(podKey)%len(keys)]: podValue,
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}
		ns := map[string]string{mesh.AnnotationInject: mesh.InjectEnabled, keys[int(nsKey)%len(keys)]: nsValue}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		res := New(&cfg, "test").Inject(Request{Pod: pod, Namespace: "emojivoto", NamespaceAnnotations: ns})
		if !res.Injected() {
			if res.Message == "" || len(res.Patch) != 0 {
				t.Fatalf("skip %q without message, or with a patch", res.Skip)
			}
			return
		}
		out := applyPatch(t, raw, res.Patch)
		var proxies int
		for _, c := range append(out.Spec.InitContainers, out.Spec.Containers...) {
			if c.Name == mesh.ProxyContainerName {
				proxies++
				for name, lim := range c.Resources.Limits {
					if req, ok := c.Resources.Requests[name]; ok && req.Cmp(lim) > 0 {
						t.Fatalf("%s request %s above limit %s", name, req.String(), lim.String())
					}
				}
				if c.SecurityContext.RunAsUser == nil || *c.SecurityContext.RunAsUser < 1 {
					t.Fatalf("proxy may run as root")
				}
			}
		}
		if proxies != 1 {
			t.Fatalf("%d proxies", proxies)
		}
	})
}
