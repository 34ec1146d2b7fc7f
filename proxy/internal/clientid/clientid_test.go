package clientid_test

import (
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/proxy/internal/clientid"
	"github.com/linkerd-go/linkerd-go/proxy/internal/forward"
	"github.com/linkerd-go/linkerd-go/proxy/internal/layertest"
)

func TestClientIDIsTheProxysToSet(t *testing.T) {
	const peer = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
	for _, tc := range []struct {
		name, peer, forged, want string
	}{
		{"meshed client", peer, "", peer},
		{"meshed client forging another", peer, "admin.x.serviceaccount.identity.linkerd.cluster.local", peer},
		{"unmeshed client forging one", "", peer, ""},
		{"unmeshed client", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := &layertest.Next{}
			r, _ := layertest.Request("GET", "http://svc.test/", "")
			r = r.WithContext(forward.WithMeta(r.Context(), &forward.ConnMeta{PeerID: tc.peer, TLS: tc.peer != ""}))
			if tc.forged != "" {
				r.Header.Set(mesh.ClientIDHeader, tc.forged)
			}
			if _, err := clientid.New(next).RoundTrip(r); err != nil {
				t.Fatal(err)
			}
			got := next.Calls()[0].Header.Values(mesh.ClientIDHeader)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Errorf("l5d-client-id %q, want %q", got, tc.want)
			}
		})
	}
}
