// Package inject adds or removes the `linkerd.io/inject: enabled`
// annotation in Kubernetes manifests (`linkerd inject` / `linkerd
// uninject`): on the pod template of workloads (Deployment, StatefulSet,
// DaemonSet, ReplicaSet, ReplicationController, Job, CronJob), on Pods and on
// Namespaces, inside multi-document YAML and List kinds. The manifests are
// edited as YAML node trees, so every other key, value, quoting style and
// key order is kept (comments may move or be dropped).
package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"go.yaml.in/yaml/v3"
)

// Mode says what Transform does.
type Mode int

const (
	// Inject sets linkerd.io/inject: enabled.
	Inject Mode = iota
	// Uninject removes linkerd.io/inject.
	Uninject
)

// Outcome of one object.
const (
	Injected   = "injected"
	Uninjected = "uninjected"
	Skipped    = "skipped"
	Unchanged  = "unchanged"
)

// Entry is what happened to one object.
type Entry struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	// Reason says why an object was skipped or left unchanged.
	Reason string `json:"reason,omitempty"`
}

func (e Entry) String() string {
	s := fmt.Sprintf("%s %q %s", strings.ToLower(e.Kind), e.Name, e.Outcome)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// templatePaths are where each kind keeps the metadata to annotate.
var templatePaths = map[string][]string{
	"Namespace":             {"metadata"},
	"Pod":                   {"metadata"},
	"Deployment":            {"spec", "template", "metadata"},
	"StatefulSet":           {"spec", "template", "metadata"},
	"DaemonSet":             {"spec", "template", "metadata"},
	"ReplicaSet":            {"spec", "template", "metadata"},
	"ReplicationController": {"spec", "template", "metadata"},
	"Job":                   {"spec", "template", "metadata"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "metadata"},
}

// podSpecPaths are where each kind keeps its pod spec.
func podSpecPath(kind string) []string {
	p := templatePaths[kind]
	if kind == "Namespace" || p == nil {
		return nil
	}
	return append(append([]string{}, p[:len(p)-1]...), "spec")
}

// Transform reads YAML (or JSON) documents from r, edits them and writes
// them to w as YAML documents separated by "---". It returns one entry per
// object (List items included).
func Transform(r io.Reader, w io.Writer, mode Mode) ([]Entry, error) {
	dec := yaml.NewDecoder(r)
	var out bytes.Buffer
	var entries []Entry
	first := true
	for i := 1; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return entries, fmt.Errorf("document %d: %w", i, err)
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return entries, fmt.Errorf("document %d is not a Kubernetes object (a YAML mapping)", i)
		}
		entries = append(entries, edit(root, mode)...)
		blockStyle(root, root.Style&yaml.FlowStyle != 0)
		if !first {
			out.WriteString("---\n")
		}
		first = false
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(&doc); err != nil {
			return entries, fmt.Errorf("document %d: %w", i, err)
		}
		if err := enc.Close(); err != nil {
			return entries, err
		}
	}
	_, err := w.Write(out.Bytes())
	return entries, err
}

// edit edits one object (or each item of a List) and reports it.
func edit(obj *yaml.Node, mode Mode) []Entry {
	kind := scalar(get(obj, "kind"))
	if strings.HasSuffix(kind, "List") {
		items := get(obj, "items")
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil
		}
		var entries []Entry
		for _, it := range items.Content {
			if it.Kind == yaml.MappingNode {
				entries = append(entries, edit(it, mode)...)
			}
		}
		return entries
	}
	e := Entry{Kind: kind, Name: scalar(get(get(obj, "metadata"), "name"))}
	if e.Kind == "" {
		e.Kind = "object"
	}
	path, ok := templatePaths[kind]
	if !ok {
		e.Outcome, e.Reason = Skipped, "not a workload, pod or namespace"
		return []Entry{e}
	}
	if mode == Uninject {
		meta := walk(obj, path, false)
		ann := get(meta, "annotations")
		if ann == nil || !remove(ann, mesh.AnnotationInject) {
			e.Outcome, e.Reason = Unchanged, "no "+mesh.AnnotationInject+" annotation"
			return []Entry{e}
		}
		if ann.Kind == yaml.MappingNode && len(ann.Content) == 0 {
			remove(meta, "annotations")
		}
		e.Outcome = Uninjected
		return []Entry{e}
	}
	if spec := walk(obj, podSpecPath(kind), false); spec != nil && scalar(get(spec, "hostNetwork")) == "true" {
		e.Outcome, e.Reason = Skipped, "hostNetwork: true: the proxy cannot redirect the host's traffic"
		return []Entry{e}
	}
	meta := walk(obj, path, true)
	ann := get(meta, "annotations")
	switch v := scalar(get(ann, mesh.AnnotationInject)); v {
	case mesh.InjectEnabled:
		e.Outcome, e.Reason = Unchanged, mesh.AnnotationInject+": enabled already"
		return []Entry{e}
	case mesh.InjectDisabled:
		e.Outcome, e.Reason = Skipped, mesh.AnnotationInject+": disabled; remove it (linkerd uninject) to mesh it"
		return []Entry{e}
	}
	if ann == nil || ann.Kind != yaml.MappingNode {
		ann = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		set(meta, "annotations", ann)
	}
	set(ann, mesh.AnnotationInject, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: mesh.InjectEnabled})
	e.Outcome = Injected
	return []Entry{e}
}

// blockStyle turns flow collections ({...}, [...], as in JSON input) into
// block style, so the output reads as ordinary Kubernetes YAML. Scalars
// keep their quoting, except in JSON documents (unquote), where every
// string is quoted: there strings are quoted only where YAML needs it.
func blockStyle(n *yaml.Node, unquote bool) {
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		n.Style &^= yaml.FlowStyle
	case yaml.ScalarNode:
		if unquote && n.Tag == "!!str" {
			n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
		}
	}
	for _, c := range n.Content {
		blockStyle(c, unquote)
	}
}

// get returns the value of key in a mapping node, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// set sets key in a mapping node, replacing its value or appending it.
func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// remove deletes key from a mapping node and reports whether it was there.
func remove(m *yaml.Node, key string) bool {
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return true
		}
	}
	return false
}

// walk follows path through mapping nodes; with create it makes missing
// (or null) mappings on the way.
func walk(n *yaml.Node, path []string, create bool) *yaml.Node {
	if path == nil {
		return nil
	}
	for _, k := range path {
		next := get(n, k)
		if next == nil || next.Kind != yaml.MappingNode {
			if !create || n == nil || n.Kind != yaml.MappingNode {
				return nil
			}
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			set(n, k, next)
		}
		n = next
	}
	return n
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}
