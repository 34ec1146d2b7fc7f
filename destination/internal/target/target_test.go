package target

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		path string
		want Target
		err  bool
	}{
		{path: "web.emojivoto.svc.cluster.local:8080", want: Target{Service: "web", Namespace: "emojivoto", Port: 8080}},
		{path: "Web.EmojiVoto.svc.cluster.local.:80", want: Target{Service: "web", Namespace: "emojivoto", Port: 80}},
		{path: "web.emojivoto.svc.cluster.local", want: Target{Service: "web", Namespace: "emojivoto", Port: 80}},
		{path: "web-0.web.emojivoto.svc.cluster.local:5432", want: Target{Hostname: "web-0", Service: "web", Namespace: "emojivoto", Port: 5432}},
		{path: "10.1.2.3:80", want: Target{Addr: netip.MustParseAddr("10.1.2.3"), Port: 80}},
		{path: "[::ffff:10.1.2.3]:80", want: Target{Addr: netip.MustParseAddr("10.1.2.3"), Port: 80}},
		{path: "[2001:db8::1]:443", want: Target{Addr: netip.MustParseAddr("2001:db8::1"), Port: 443}},
		{path: "", err: true},
		{path: "10.1.2.3", err: true},
		{path: "10.1.2.3:0", err: true},
		{path: "10.1.2.3:65536", err: true},
		{path: "[fe80::1%eth0]:80", err: true},
		{path: "example.com:80", err: true},
		{path: "web.svc.cluster.local:80", err: true},
		{path: "a.b.c.d.svc.cluster.local:80", err: true},
		{path: "web.emojivoto.svc.other.domain:80", err: true},
		{path: "web_x.emojivoto.svc.cluster.local:80", err: true},
		{path: "web.emojivoto.svc.cluster.local:+80", err: true},
		{path: "web.emojivoto.svc.cluster.local:", err: true},
		{path: ":80", err: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.path, "cluster.local")
		if tt.err {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrMalformed", tt.path, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.path, got, err, tt.want)
		}
	}
}

// FuzzParse checks that any path either fails with ErrMalformed or parses
// into a target that prints and parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"web.ns.svc.cluster.local:80", "a.web.ns.svc.cluster.local.:1", "10.0.0.1:80", "[2001:db8::1]:8080", "web.ns.svc.cluster.local"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got, err := Parse(path, "cluster.local")
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if got.IsService() == got.Addr.IsValid() || got.Port == 0 {
			t.Fatalf("Parse(%q) = %+v: not exactly one kind of target", path, got)
		}
		s := got.Path("cluster.local")
		again, err := Parse(s, "cluster.local")
		if err != nil || again != got {
			t.Fatalf("Parse(%q) = %+v; its form %q parses as %+v, %v", path, got, s, again, err)
		}
	})
}
