package policy

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// parseCache keeps what the current version of each object parsed to, so
// that a change that recomputes many ports parses each object once rather
// than once per port. An entry is per object (kind, namespace, name) and
// holds the UID and resourceVersion it was parsed from: another version
// parses again and takes its place, and a deletion drops it, so the cache
// holds at most one entry per live object. Objects without a UID or
// resourceVersion (as in tests) are parsed every time. What a parse returns
// is shared: callers never change it.
type parseCache struct {
	mu sync.Mutex
	m  map[parseKey]parsed
}

type parseKey struct {
	kind, namespace, name string
}

type parsed struct {
	uid types.UID
	rv  string
	v   any
	err error
}

func keyOf(kind string, obj *unstructured.Unstructured) (parseKey, bool) {
	return parseKey{kind: kind, namespace: obj.GetNamespace(), name: obj.GetName()}, obj.GetUID() != "" && obj.GetResourceVersion() != ""
}

// cached returns parse(obj), from the cache when this version was parsed.
func cached[T any](c *parseCache, kind string, obj *unstructured.Unstructured, parse func(*unstructured.Unstructured) (T, error)) (T, error) {
	key, ok := keyOf(kind, obj)
	if !ok || c == nil {
		return parse(obj)
	}
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	c.mu.Lock()
	p, hit := c.m[key]
	c.mu.Unlock()
	if hit && p.uid == uid && p.rv == rv {
		v, _ := p.v.(T)
		return v, p.err
	}
	v, err := parse(obj)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[parseKey]parsed{}
	}
	c.m[key] = parsed{uid: uid, rv: rv, v: v, err: err}
	c.mu.Unlock()
	return v, err
}

// forget drops the entry of a deleted object.
func (c *parseCache) forget(kind string, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	if key, ok := keyOf(kind, u); ok {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
	}
}

// size is the number of entries (for tests).
func (c *parseCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
