package mesh

import "testing"

func TestIsMeshHeader(t *testing.T) {
	for name, want := range map[string]bool{
		ClientIDHeader:    true,
		OrigProtoHeader:   true,
		ProxyErrorHeader:  true,
		DstOverrideHeader: true,
		"L5D-Client-Id":   true,
		"l5d-":            true,
		"l5d":             false,
		"x-l5d-client-id": false,
		"host":            false,
		"":                false,
	} {
		if got := IsMeshHeader(name); got != want {
			t.Errorf("IsMeshHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseOrigProto(t *testing.T) {
	for v, want := range map[string]struct {
		minor int
		ok    bool
	}{
		"HTTP/1.1": {1, true},
		"HTTP/1.0": {0, true},
		"HTTP/2":   {0, false},
		"http/1.1": {0, false},
		"":         {0, false},
	} {
		minor, ok := ParseOrigProto(v)
		if minor != want.minor || ok != want.ok {
			t.Errorf("ParseOrigProto(%q) = %d, %v; want %d, %v", v, minor, ok, want.minor, want.ok)
		}
	}
}

func TestWellKnownPorts(t *testing.T) {
	// These numbers are the compatibility surface: manifests, charts and
	// habits written for Linkerd depend on them.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"OutboundPort", OutboundPort, 4140},
		{"InboundPort", InboundPort, 4143},
		{"ControlPort", ControlPort, 4190},
		{"AdminPort", AdminPort, 4191},
		{"DefaultProxyUID", DefaultProxyUID, 2102},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
