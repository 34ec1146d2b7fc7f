package crds

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-go/linkerd-go/tools/testkit/kubetest"
)

// chartDir is the chart, relative to this package's folder (where go test
// runs).
var chartDir = filepath.Join("..", "..", "..", "deploy", "charts", "linkerd-crds")

func templatesDir() string { return filepath.Join(chartDir, "templates") }

// crdFacts is what users and the other components rely on for one CRD.
type crdFacts struct {
	group, kind, plural, singular string
	shortNames                    []string
	// versions are the served versions, in the file's order.
	versions   []string
	storage    string
	deprecated []string
	// columns are the storage version's printer column names.
	columns []string
	status  bool
}

var wantCRDs = map[string]crdFacts{
	"serviceprofiles.linkerd.io": {
		group: "linkerd.io", kind: "ServiceProfile", plural: "serviceprofiles", singular: "serviceprofile",
		shortNames: []string{"sp"}, versions: []string{"v1alpha2", "v1alpha1"}, storage: "v1alpha2",
		columns: []string{"Opaque Ports", "Retry Ratio", "Routes", "Age"},
	},
	"servers.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "Server", plural: "servers", singular: "server",
		shortNames: []string{"srv"}, versions: []string{"v1alpha1", "v1beta1", "v1beta2", "v1beta3"}, storage: "v1beta3",
		deprecated: []string{"v1alpha1", "v1beta1"},
		columns:    []string{"Port", "Pod Selector", "External Workload Selector", "Protocol", "Access Policy", "Age"},
	},
	"serverauthorizations.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "ServerAuthorization", plural: "serverauthorizations", singular: "serverauthorization",
		shortNames: []string{"saz"}, versions: []string{"v1alpha1", "v1beta1"}, storage: "v1beta1",
		deprecated: []string{"v1alpha1"},
		columns:    []string{"Server", "Server Selector", "Age"},
	},
	"authorizationpolicies.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "AuthorizationPolicy", plural: "authorizationpolicies", singular: "authorizationpolicy",
		versions: []string{"v1alpha1"}, storage: "v1alpha1",
		columns: []string{"Target Kind", "Target Name", "Authentications", "Age"},
	},
	"meshtlsauthentications.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "MeshTLSAuthentication", plural: "meshtlsauthentications", singular: "meshtlsauthentication",
		versions: []string{"v1alpha1"}, storage: "v1alpha1",
		columns: []string{"Identities", "Identity Refs", "Age"},
	},
	"networkauthentications.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "NetworkAuthentication", plural: "networkauthentications", singular: "networkauthentication",
		versions: []string{"v1alpha1"}, storage: "v1alpha1",
		columns: []string{"Networks", "Age"},
	},
	"httproutes.policy.linkerd.io": {
		group: "policy.linkerd.io", kind: "HTTPRoute", plural: "httproutes", singular: "httproute",
		versions: []string{"v1alpha1", "v1beta1", "v1beta2", "v1beta3"}, storage: "v1beta3",
		columns: []string{"Hostnames", "Parents", "Age"}, status: true,
	},
}

func readCRDs(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	list, err := kubetest.ReadCRDs([]string{templatesDir()})
	if err != nil {
		t.Fatal(err)
	}
	crds := map[string]*unstructured.Unstructured{}
	for _, crd := range list {
		if _, dup := crds[crd.GetName()]; dup {
			t.Errorf("CRD %s is defined twice", crd.GetName())
		}
		crds[crd.GetName()] = crd
	}
	return crds
}

func versionsOf(crd *unstructured.Unstructured) []map[string]any {
	raw, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var out []map[string]any
	for _, v := range raw {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func schemaOf(version map[string]any) map[string]any {
	s, _, _ := unstructured.NestedMap(version, "schema", "openAPIV3Schema")
	return s
}

// TestTemplatesArePlainYAML keeps every file under templates/ free of Helm
// directives, so the folder can be handed to kubetest's CRDDirs as it is.
func TestTemplatesArePlainYAML(t *testing.T) {
	entries, err := os.ReadDir(templatesDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("%s: sub-folders are not read by kubetest's CRDDirs", e.Name())
			continue
		}
		if filepath.Ext(e.Name()) != ".yaml" {
			t.Errorf("%s: only .yaml files belong in templates/", e.Name())
		}
		data, err := os.ReadFile(filepath.Join(templatesDir(), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "{{") {
			t.Errorf("%s holds a template directive", e.Name())
		}
	}
}

// TestCRDFacts checks names, scope, versions and printer columns against
// what Linkerd's users rely on.
func TestCRDFacts(t *testing.T) {
	crds := readCRDs(t)
	var got, want []string
	for name := range crds {
		got = append(got, name)
	}
	for name := range wantCRDs {
		want = append(want, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CRDs = %v, want %v", got, want)
	}
	for name, w := range wantCRDs {
		crd := crds[name]
		str := func(path ...string) string {
			s, _, _ := unstructured.NestedString(crd.Object, path...)
			return s
		}
		strs := func(path ...string) []string {
			s, _, _ := unstructured.NestedStringSlice(crd.Object, path...)
			return s
		}
		if g := str("spec", "group"); g != w.group {
			t.Errorf("%s: group %q, want %q", name, g, w.group)
		}
		if g := str("spec", "scope"); g != "Namespaced" {
			t.Errorf("%s: scope %q, want Namespaced", name, g)
		}
		if g := str("spec", "names", "kind"); g != w.kind {
			t.Errorf("%s: kind %q, want %q", name, g, w.kind)
		}
		if g := str("spec", "names", "listKind"); g != w.kind+"List" {
			t.Errorf("%s: listKind %q, want %q", name, g, w.kind+"List")
		}
		if g := str("spec", "names", "plural"); g != w.plural || name != w.plural+"."+w.group {
			t.Errorf("%s: plural %q, want %q", name, g, w.plural)
		}
		if g := str("spec", "names", "singular"); g != w.singular {
			t.Errorf("%s: singular %q, want %q", name, g, w.singular)
		}
		if g := strs("spec", "names", "shortNames"); !slices.Equal(g, w.shortNames) {
			t.Errorf("%s: shortNames %v, want %v", name, g, w.shortNames)
		}
		if s := str("spec", "conversion", "strategy"); s != "" && s != "None" {
			t.Errorf("%s: conversion %q; the compatibility test assumes None", name, s)
		}

		var served, deprecated, storage []string
		for _, v := range versionsOf(crd) {
			vname, _ := v["name"].(string)
			if v["served"] == true {
				served = append(served, vname)
			}
			if v["storage"] == true {
				storage = append(storage, vname)
			}
			if v["deprecated"] == true {
				deprecated = append(deprecated, vname)
				if msg, _ := v["deprecationWarning"].(string); !strings.Contains(msg, w.storage) {
					t.Errorf("%s %s: deprecationWarning %q does not point to %s", name, vname, msg, w.storage)
				}
			}
			columns := columnNames(v)
			if len(columns) == 0 {
				t.Errorf("%s %s: no printer columns", name, vname)
			}
			if vname == w.storage && !slices.Equal(columns, w.columns) {
				t.Errorf("%s %s: printer columns %v, want %v", name, vname, columns, w.columns)
			}
			for _, c := range columnPaths(v) {
				if err := resolveColumn(schemaOf(v), c); err != nil {
					t.Errorf("%s %s: printer column %s: %v", name, vname, c, err)
				}
			}
			_, hasStatus, _ := unstructured.NestedMap(v, "subresources", "status")
			if hasStatus != w.status {
				t.Errorf("%s %s: status subresource %v, want %v", name, vname, hasStatus, w.status)
			}
		}
		if !slices.Equal(served, w.versions) {
			t.Errorf("%s: served versions %v, want %v", name, served, w.versions)
		}
		if !slices.Equal(storage, []string{w.storage}) {
			t.Errorf("%s: storage versions %v, want [%s]", name, storage, w.storage)
		}
		if !slices.Equal(deprecated, w.deprecated) {
			t.Errorf("%s: deprecated versions %v, want %v", name, deprecated, w.deprecated)
		}
	}
}

// columnNames and columnPaths list a version's printer columns.
func columnNames(version map[string]any) []string { return columnField(version, "name") }
func columnPaths(version map[string]any) []string { return columnField(version, "jsonPath") }

func columnField(version map[string]any, field string) []string {
	var out []string
	cols, _, _ := unstructured.NestedSlice(version, "additionalPrinterColumns")
	for _, c := range cols {
		if m, ok := c.(map[string]any); ok {
			v, _ := m[field].(string)
			out = append(out, v)
		}
	}
	return out
}

// resolveColumn follows a printer column's simple JSONPath (".a.b[*].c")
// through the schema, so a column never names a field that does not exist.
func resolveColumn(schema map[string]any, path string) error {
	if path == ".metadata.creationTimestamp" {
		return nil
	}
	if !strings.HasPrefix(path, ".spec.") && !strings.HasPrefix(path, ".status.") {
		return fmt.Errorf("only .spec, .status and .metadata.creationTimestamp columns are expected")
	}
	node := schema
	for _, seg := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		field, all := strings.CutSuffix(seg, "[*]")
		props, _ := node["properties"].(map[string]any)
		next, ok := props[field].(map[string]any)
		if !ok {
			return fmt.Errorf("no field %q", field)
		}
		node = next
		if all {
			items, ok := node["items"].(map[string]any)
			if !ok {
				return fmt.Errorf("%q is not a list", field)
			}
			node = items
		}
	}
	return nil
}

// TestStructuralSchemas checks every version's schema against the rules the
// API server enforces for apiextensions.k8s.io/v1 (every field typed, value
// validations in anyOf/allOf/oneOf/not only, items on arrays, no unknown
// keywords), so a mistake shows here with its path before any server runs.
func TestStructuralSchemas(t *testing.T) {
	for name, crd := range readCRDs(t) {
		for _, v := range versionsOf(crd) {
			schema := schemaOf(v)
			if schema == nil {
				t.Errorf("%s %v: no openAPIV3Schema", name, v["name"])
				continue
			}
			var errs []string
			checkStructural(schema, "openAPIV3Schema", true, &errs)
			for _, e := range errs {
				t.Errorf("%s %v: %s", name, v["name"], e)
			}
		}
	}
}

var knownKeywords = map[string]bool{
	"type": true, "format": true, "description": true, "title": true, "example": true,
	"properties": true, "additionalProperties": true, "items": true, "required": true,
	"enum": true, "default": true, "nullable": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true,
	"minLength": true, "maxLength": true, "pattern": true,
	"minItems": true, "maxItems": true, "minProperties": true, "maxProperties": true,
	"anyOf": true, "allOf": true, "oneOf": true, "not": true,
	"x-kubernetes-validations": true, "x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true,
	"x-kubernetes-list-type": true, "x-kubernetes-list-map-keys": true, "x-kubernetes-map-type": true,
	"x-kubernetes-embedded-resource": true,
}

var schemaTypes = map[string]bool{"object": true, "array": true, "string": true, "integer": true, "number": true, "boolean": true}

func checkStructural(node map[string]any, path string, root bool, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, path+": "+fmt.Sprintf(format, args...))
	}
	for k := range node {
		if !knownKeywords[k] {
			fail("unknown or forbidden keyword %q", k)
		}
	}
	typ, _ := node["type"].(string)
	intOrString := node["x-kubernetes-int-or-string"] == true
	preserve := node["x-kubernetes-preserve-unknown-fields"] == true
	switch {
	case intOrString:
		if typ != "" {
			fail("x-kubernetes-int-or-string with a type")
		}
		if alts, ok := node["anyOf"].([]any); ok && !isIntOrStringAnyOf(alts) {
			fail("x-kubernetes-int-or-string allows only anyOf [{type: integer}, {type: string}]")
		}
	case typ == "" && !preserve:
		fail("no type")
	case typ != "" && !schemaTypes[typ]:
		fail("unknown type %q", typ)
	}
	if root && typ != "object" {
		fail("the root must be an object")
	}
	props, hasProps := node["properties"].(map[string]any)
	if hasProps && typ != "object" {
		fail("properties on a %q", typ)
	}
	if _, ok := node["additionalProperties"]; ok && hasProps {
		fail("both properties and additionalProperties")
	}
	for _, r := range asSlice(node["required"]) {
		if _, ok := props[r.(string)]; !ok && !preserve {
			fail("required field %q is not a property", r)
		}
	}
	if typ == "array" {
		items, ok := node["items"].(map[string]any)
		if !ok {
			fail("an array without a single items schema")
		} else {
			checkStructural(items, path+".items", false, errs)
		}
	}
	if typ == "string" {
		for _, e := range asSlice(node["enum"]) {
			if _, ok := e.(string); !ok {
				fail("enum value %v is not a string", e)
			}
		}
	}
	for name, p := range props {
		pm, ok := p.(map[string]any)
		if !ok {
			fail("property %q is not a schema", name)
			continue
		}
		if root && name == "metadata" {
			checkMetadata(pm, path+".properties.metadata", errs)
			continue
		}
		checkStructural(pm, path+".properties."+name, false, errs)
	}
	if ap, ok := node["additionalProperties"].(map[string]any); ok {
		checkStructural(ap, path+".additionalProperties", false, errs)
	}
	for _, j := range []string{"anyOf", "allOf", "oneOf"} {
		for i, s := range asSlice(node[j]) {
			if intOrString && j == "anyOf" {
				continue
			}
			if sm, ok := s.(map[string]any); ok {
				checkJunctor(sm, props, fmt.Sprintf("%s.%s[%d]", path, j, i), errs)
			}
		}
	}
	if n, ok := node["not"].(map[string]any); ok {
		checkJunctor(n, props, path+".not", errs)
	}
}

// checkJunctor enforces that anyOf/allOf/oneOf/not only add value
// validations to fields declared outside them.
func checkJunctor(node, outerProps map[string]any, path string, errs *[]string) {
	for _, k := range []string{"type", "default", "description", "nullable", "additionalProperties", "x-kubernetes-validations", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"} {
		if _, ok := node[k]; ok {
			*errs = append(*errs, fmt.Sprintf("%s: %q inside a junctor", path, k))
		}
	}
	for name := range asMap(node["properties"]) {
		if _, ok := outerProps[name]; !ok {
			*errs = append(*errs, fmt.Sprintf("%s: property %q is not declared outside the junctor", path, name))
		}
	}
}

func checkMetadata(node map[string]any, path string, errs *[]string) {
	for k := range node {
		if k != "type" && k != "properties" && k != "description" {
			*errs = append(*errs, fmt.Sprintf("%s: only name and generateName may be constrained", path))
		}
	}
	for name := range asMap(node["properties"]) {
		if name != "name" && name != "generateName" {
			*errs = append(*errs, fmt.Sprintf("%s: only name and generateName may be constrained, not %q", path, name))
		}
	}
}

func isIntOrStringAnyOf(list []any) bool {
	if len(list) != 2 {
		return false
	}
	a, _ := list[0].(map[string]any)
	b, _ := list[1].(map[string]any)
	return len(a) == 1 && len(b) == 1 && a["type"] == "integer" && b["type"] == "string"
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// TestServedVersionsCompatible backs the conversion strategy None: every
// field of an older served version exists in the storage version with the
// same type, so objects stored in one version read back in every other.
func TestServedVersionsCompatible(t *testing.T) {
	for name, crd := range readCRDs(t) {
		var storage map[string]any
		for _, v := range versionsOf(crd) {
			if v["storage"] == true {
				storage = schemaOf(v)
			}
		}
		for _, v := range versionsOf(crd) {
			if v["storage"] == true {
				continue
			}
			for _, e := range incompatibilities(schemaOf(v), storage) {
				t.Errorf("%s %v: %s", name, v["name"], e)
			}
		}
	}
}

// incompatibilities lists the fields of older that storage lacks or types
// differently.
func incompatibilities(older, storage map[string]any) []string {
	storageFields := map[string]string{}
	collectFields(storage, "", storageFields)
	fields := map[string]string{}
	collectFields(older, "", fields)
	var out []string
	for path, typ := range fields {
		st, ok := storageFields[path]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("field %s is not in the storage version", path))
		case st != typ:
			out = append(out, fmt.Sprintf("field %s is a %s, but a %s in the storage version", path, typ, st))
		}
	}
	sort.Strings(out)
	return out
}

// collectFields maps every field path of a schema to its type.
func collectFields(node map[string]any, path string, out map[string]string) {
	typ, _ := node["type"].(string)
	if node["x-kubernetes-int-or-string"] == true {
		typ = "int-or-string"
	}
	out[path] = typ
	for name, p := range asMap(node["properties"]) {
		collectFields(asMap(p), path+"."+name, out)
	}
	if items := asMap(node["items"]); items != nil {
		collectFields(items, path+"[]", out)
	}
	if ap := asMap(node["additionalProperties"]); ap != nil {
		collectFields(ap, path+"{}", out)
	}
}

// TestCheckersCatchMistakes proves the checks above on schemas that are
// wrong on purpose, so a passing chart means something.
func TestCheckersCatchMistakes(t *testing.T) {
	parse := func(s string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, c := range []struct{ schema, want string }{
		{`{type: object, properties: {spec: {properties: {a: {type: string}}}}}`, "openAPIV3Schema.properties.spec: no type"},
		{`{type: object, properties: {a: {type: array}}}`, "array without a single items schema"},
		{`{type: object, properties: {a: {type: string, properties: {b: {type: string}}}}}`, `properties on a "string"`},
		{`{type: object, properties: {a: {type: string, maxlength: 3}}}`, `unknown or forbidden keyword "maxlength"`},
		{`{type: object, required: [b], properties: {a: {type: string}}}`, `required field "b" is not a property`},
		{`{type: object, properties: {a: {type: string}}, oneOf: [{type: object}]}`, `"type" inside a junctor`},
		{`{type: object, properties: {a: {type: string}}, anyOf: [{properties: {b: {}}}]}`, `property "b" is not declared outside the junctor`},
		{`{type: object, properties: {metadata: {type: object, properties: {labels: {type: object}}}}}`, `only name and generateName may be constrained, not "labels"`},
		{`{type: object, properties: {port: {x-kubernetes-int-or-string: true, anyOf: [{type: integer, minimum: 1}, {type: string}]}}}`, "x-kubernetes-int-or-string allows only anyOf"},
		{`{type: object, properties: {a: {type: object, properties: {b: {type: string}}, additionalProperties: {type: string}}}}`, "both properties and additionalProperties"},
		{`{type: string}`, "the root must be an object"},
	} {
		var errs []string
		checkStructural(parse(c.schema), "openAPIV3Schema", true, &errs)
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
			t.Errorf("%s: errors %q, want one with %q", c.schema, errs, c.want)
		}
	}

	schema := parse(`{type: object, properties: {spec: {type: object, properties: {a: {type: string}, routes: {type: array, items: {type: object, properties: {name: {type: string}}}}}}}}`)
	for path, want := range map[string]string{
		".spec.a":              "",
		".spec.routes[*].name": "",
		".spec.b":              `no field "b"`,
		".spec.a[*].x":         `"a" is not a list`,
		".metadata.labels":     "only .spec",
	} {
		err := resolveColumn(schema, path)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("resolveColumn(%s) = %v, want %q", path, err, want)
		}
	}

	older := parse(`{type: object, properties: {spec: {type: object, properties: {port: {x-kubernetes-int-or-string: true}, gone: {type: string}, count: {type: integer}}}}}`)
	newer := parse(`{type: object, properties: {spec: {type: object, properties: {port: {x-kubernetes-int-or-string: true}, count: {type: string}, added: {type: string}}}}}`)
	got := incompatibilities(older, newer)
	want := []string{
		"field .spec.count is a integer, but a string in the storage version",
		"field .spec.gone is not in the storage version",
	}
	if !slices.Equal(got, want) {
		t.Errorf("incompatibilities = %q, want %q", got, want)
	}
}
