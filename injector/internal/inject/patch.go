package inject

import (
	"encoding/json"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Operation is one RFC 6902 JSON patch operation. The injector only adds.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Patch is a JSON patch.
type Patch []Operation

// MarshalJSON encodes an empty patch as [] rather than null.
func (p Patch) MarshalJSON() ([]byte, error) {
	if p == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]Operation(p))
}

// pointerEscape escapes a JSON pointer token (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func add(path string, v any) Operation { return Operation{Op: "add", Path: path, Value: v} }

// addToMap adds entries to the map at path (labels, annotations), creating it
// if the object has none. Keys are added in sorted order.
func addToMap(p *Patch, path string, existing, entries map[string]string) {
	if existing == nil {
		*p = append(*p, add(path, entries))
		return
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		*p = append(*p, add(path+"/"+pointerEscape(k), entries[k]))
	}
}

// prependContainers puts cs, in order, before the existing items of the list
// at path.
func prependContainers(p *Patch, path string, existing int, cs ...corev1.Container) {
	if existing == 0 {
		*p = append(*p, add(path, cs))
		return
	}
	for i := len(cs) - 1; i >= 0; i-- {
		*p = append(*p, add(path+"/0", cs[i]))
	}
}

// appendItems puts items after the existing items of the list at path.
func appendItems[T any](p *Patch, path string, existing int, items ...T) {
	if existing == 0 {
		*p = append(*p, add(path, items))
		return
	}
	for _, it := range items {
		*p = append(*p, add(path+"/-", it))
	}
}
