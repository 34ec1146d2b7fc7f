package origproto_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
	"github.com/linkerd-go/linkerd-go/proxy/internal/origproto"
)

func TestOrigProto(t *testing.T) {
	for _, tc := range []struct {
		name      string
		major     int
		mark      string
		wantMajor int
		wantMinor int
		wantResp  string
	}{
		{"HTTP/1.1 carried over HTTP/2", 2, mesh.OrigProtoHTTP11, 1, 1, mesh.OrigProtoHTTP11},
		{"HTTP/1.0 carried over HTTP/2", 2, mesh.OrigProtoHTTP10, 1, 0, mesh.OrigProtoHTTP10},
		{"HTTP/2 unmarked", 2, "", 2, 0, ""},
		{"unknown mark dropped", 2, "HTTP/3", 2, 0, ""},
		{"mark on HTTP/1 dropped", 1, mesh.OrigProtoHTTP11, 1, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &layertest.Next{}
			r, _ := layertest.Request("GET", "http://svc.test/", "")
			r.ProtoMajor, r.ProtoMinor = tc.major, 0
			if tc.major == 1 {
				r.ProtoMinor = 1
			}
			if tc.mark != "" {
				r.Header.Set(mesh.OrigProtoHeader, tc.mark)
			}
			resp, err := origproto.New(next).RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			got := next.Calls()[0]
			if got.ProtoMajor != tc.wantMajor || got.ProtoMinor != tc.wantMinor {
				t.Errorf("sent as HTTP/%d.%d, want HTTP/%d.%d", got.ProtoMajor, got.ProtoMinor, tc.wantMajor, tc.wantMinor)
			}
			if v := got.Header.Get(mesh.OrigProtoHeader); v != "" {
				t.Errorf("the application saw l5d-orig-proto %q", v)
			}
			if v := resp.Header.Get(mesh.OrigProtoHeader); v != tc.wantResp {
				t.Errorf("response l5d-orig-proto %q, want %q", v, tc.wantResp)
			}
		})
	}
}

func TestOrigProtoPassesErrorsOn(t *testing.T) {
	boom := errors.New("boom")
	next := &layertest.Next{Answer: func(*http.Request) (*http.Response, error) { return nil, boom }}
	r, _ := layertest.Request("GET", "http://svc.test/", "")
	r.ProtoMajor = 2
	r.Header.Set(mesh.OrigProtoHeader, mesh.OrigProtoHTTP11)
	if _, err := origproto.New(next).RoundTrip(r); !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
}
