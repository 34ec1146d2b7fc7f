package policy

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

func TestParseCache(t *testing.T) {
	c := &parseCache{}
	calls := 0
	parse := func(obj *unstructured.Unstructured) (string, error) {
		calls++
		return obj.GetResourceVersion(), nil
	}
	obj := func(uid, rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetNamespace("ns")
		u.SetName("a")
		u.SetUID(types.UID(uid))
		u.SetResourceVersion(rv)
		return u
	}
	for _, step := range []struct {
		obj       *unstructured.Unstructured
		want      string
		wantCalls int
	}{
		{obj("u1", "1"), "1", 1},
		{obj("u1", "1"), "1", 1}, // the same version: cached
		{obj("u1", "2"), "2", 2}, // a new version replaces it
		{obj("u2", "2"), "2", 3}, // re-created under the same name
		{obj("u2", ""), "", 4},   // no resourceVersion: never cached
		{obj("u2", ""), "", 5},
	} {
		got, _ := cached(c, KindServer, step.obj, parse)
		if got != step.want || calls != step.wantCalls {
			t.Fatalf("got %q after %d parses, want %q after %d", got, calls, step.want, step.wantCalls)
		}
	}
	if n := c.size(); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
	c.forget(KindServer, obj("u2", "2"))
	if n := c.size(); n != 0 {
		t.Fatalf("%d entries after the deletion, want 0", n)
	}
}
