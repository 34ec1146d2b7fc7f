package discovery

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
)

// Request condition builders.

func mPath(re string) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Path{Path: &destinationv1.PathMatch{Regex: re}}}
}

func mMethod(m string) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Method{Method: &destinationv1.MethodMatch{Method: m}}}
}

func mAll(ms ...*destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: &destinationv1.RequestMatch_List{Matches: ms}}}
}

func mAny(ms ...*destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Any{Any: &destinationv1.RequestMatch_List{Matches: ms}}}
}

func mNot(m *destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Not{Not: m}}
}

func rStatus(lo, hi uint32) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Status{Status: &destinationv1.HttpStatusRange{Min: lo, Max: hi}}}
}

func rNot(m *destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Not{Not: m}}
}

func rAny(ms ...*destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Any{Any: &destinationv1.ResponseMatch_List{Matches: ms}}}
}

func rAll(ms ...*destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: &destinationv1.ResponseMatch_List{Matches: ms}}}
}

func route(name string, cond *destinationv1.RequestMatch) *destinationv1.Route {
	return &destinationv1.Route{Name: name, Condition: cond}
}

// booksProfile has routes that exercise every kind of condition.
func booksProfile() *destinationv1.Profile {
	get := route("GET /books/{id}", mAll(mMethod("GET"), mPath(`/books/[0-9]+`)))
	get.IsRetryable = true
	get.Timeout = durationpb.New(300 * time.Millisecond)
	get.ResponseClasses = []*destinationv1.ResponseClass{
		{Condition: rStatus(404, 404), IsFailure: false},
		{Condition: rAny(rStatus(500, 599), rStatus(429, 429)), IsFailure: true},
		{Condition: rAll(rNot(rStatus(100, 399)), rStatus(400, 499)), IsFailure: true},
	}
	return &destinationv1.Profile{
		FullyQualifiedName: "books.ns.svc.cluster.local",
		Routes: []*destinationv1.Route{
			get,
			route("write /books", mAll(mAny(mMethod("POST"), mMethod("PUT")), mPath(`/books(/.*)?`))),
			route("not GET /admin", mAll(mPath(`/admin/.*`), mNot(mMethod("GET")))),
			route("alternatives", mPath(`/a|/b`)),
			route("no condition", nil),
			route("empty any", mAny()),
			route("everything else", mAll()),
		},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: 0.5, MinRetriesPerSecond: 3, Ttl: durationpb.New(5 * time.Second)},
		DstOverrides: []*destinationv1.WeightedDestination{
			{Authority: "books-v1.ns.svc.cluster.local:80", Weight: 9000},
			{Authority: "books-v2.ns.svc.cluster.local:80", Weight: 1000},
			{Authority: "books-v3.ns.svc.cluster.local:80", Weight: 0},
		},
	}
}

func TestProfileRouteMatching(t *testing.T) {
	p, _, problems := profileFromProto(booksProfile(), nil)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/books/12", "GET /books/{id}"},
		{"GET", "/books/12/", "everything else"}, // the regex matches the whole path only
		{"GET", "/x/books/12", "everything else"},
		{"HEAD", "/books/12", "everything else"},
		{"POST", "/books", "write /books"},
		{"PUT", "/books/12", "write /books"},
		{"DELETE", "/books/12", "everything else"},
		{"POST", "/admin/users", "not GET /admin"},
		{"GET", "/admin/users", "everything else"},
		{"GET", "/a", "alternatives"}, // "/a|/b" is anchored as a whole
		{"GET", "/b", "alternatives"},
		{"GET", "/ab", "everything else"},
	} {
		r := p.Route(tc.method, tc.path)
		if r == nil || r.Name != tc.want {
			t.Errorf("Route(%s %s) = %v, want %q", tc.method, tc.path, r, tc.want)
		}
	}
	if len(p.Routes) != 6 {
		t.Errorf("%d routes, want 6 (the one without a condition dropped)", len(p.Routes))
	}

	get := p.Routes[0]
	if !get.Retryable || get.Timeout != 300*time.Millisecond {
		t.Errorf("route %+v", get)
	}
	for status, fail := range map[int]bool{200: false, 404: false, 429: true, 503: true, 400: true, 302: false} {
		if got := get.IsFailure(status); got != fail {
			t.Errorf("IsFailure(%d) = %v, want %v", status, got, fail)
		}
	}
	// Without classes: 5xx fails.
	other := p.Route("POST", "/books")
	if other.IsFailure(404) || !other.IsFailure(500) || other.Retryable || other.Timeout != 0 {
		t.Errorf("default classification or route fields wrong: %+v", other)
	}
	if want := (RetryBudget{RetryRatio: 0.5, MinRetriesPerSecond: 3, TTL: 5 * time.Second}); p.RetryBudget != want {
		t.Errorf("retry budget %+v, want %+v", p.RetryBudget, want)
	}
	if want := []WeightedAuthority{{"books-v1.ns.svc.cluster.local:80", 9000}, {"books-v2.ns.svc.cluster.local:80", 1000}}; !slices.Equal(p.DstOverrides, want) {
		t.Errorf("dst overrides %v, want %v", p.DstOverrides, want)
	}
	var nilProfile *Profile
	if nilProfile.Route("GET", "/") != nil {
		t.Error("nil profile matched a route")
	}
}

func TestProfileInvalidPartsDropped(t *testing.T) {
	deep := mPath("/deep")
	for range maxMatchDepth + 1 {
		deep = mNot(mNot(deep))
	}
	wide := make([]*destinationv1.RequestMatch, maxMatchNodes+1)
	for i := range wide {
		wide[i] = mMethod("GET")
	}
	badClass := route("bad class", mPath("/c"))
	badClass.ResponseClasses = []*destinationv1.ResponseClass{
		{Condition: rStatus(600, 700), IsFailure: true},
		{Condition: nil},
		{Condition: rStatus(500, 400)},
		{Condition: rStatus(200, 200), IsFailure: true},
	}
	badTimeout := route("bad timeout", mPath("/t"))
	badTimeout.Timeout = durationpb.New(-time.Second)
	m := &destinationv1.Profile{
		Routes: []*destinationv1.Route{
			route("bad regex", mPath(`/books/(`)),
			route("escaping regex", mPath(`)|(.*`)),
			route("long regex", mPath(strings.Repeat("a", maxRegexLength+1))),
			route("huge repeat", mPath(`a{1001}`)),
			route("empty method", mMethod("")),
			route("deep", deep),
			route("wide", mAny(wide...)),
			badTimeout,
			badClass,
			route("good", mPath(`/.*`)),
		},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: -1, Ttl: durationpb.New(time.Second)},
		DstOverrides: []*destinationv1.WeightedDestination{
			{Authority: "no-port", Weight: 1},
			{Authority: "ok.ns.svc.cluster.local:80", Weight: 1},
		},
		Endpoint: &destinationv1.Endpoint{Address: &destinationv1.SocketAddress{Ip: []byte{1}, Port: 1}},
	}
	p, _, problems := profileFromProto(m, nil)
	// 8 routes, 3 classes, budget, split branch, endpoint.
	if len(problems) != 14 {
		t.Errorf("%d problems, want 14: %v", len(problems), problems)
	}
	var names []string
	for _, r := range p.Routes {
		names = append(names, r.Name)
	}
	if want := []string{"bad class", "good"}; !slices.Equal(names, want) {
		t.Fatalf("routes kept %v, want %v", names, want)
	}
	if len(p.Routes[0].ResponseClasses) != 1 || !p.Routes[0].IsFailure(200) {
		t.Errorf("valid response class not kept: %+v", p.Routes[0].ResponseClasses)
	}
	if p.Route("GET", "/x") != p.Routes[1] || p.Route("GET", "/)") != p.Routes[1] {
		t.Errorf("good route does not match")
	}
	if p.RetryBudget != DefaultRetryBudget {
		t.Errorf("invalid retry budget not replaced by the default: %+v", p.RetryBudget)
	}
	if len(p.DstOverrides) != 1 || p.Endpoint != nil {
		t.Errorf("split %v endpoint %v", p.DstOverrides, p.Endpoint)
	}
}

func TestProfileDefaultsAndEndpoint(t *testing.T) {
	m := &destinationv1.Profile{
		OpaqueProtocol: true,
		Endpoint:       pbEndpoint("10.1.0.5:3306", withIdentity(idA, ""), withOpaque(4143)),
	}
	p, _, problems := profileFromProto(m, nil)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	if !p.Opaque || p.RetryBudget != DefaultRetryBudget || p.Routes != nil || p.DstOverrides != nil {
		t.Errorf("profile %+v", p)
	}
	if p.Endpoint == nil || p.Endpoint.Identity != idA || p.Endpoint.OpaqueInboundPort != 4143 {
		t.Errorf("endpoint %+v", p.Endpoint)
	}
	if p.Route("GET", "/") != nil {
		t.Error("route matched in a profile without routes")
	}
}

func TestProfileRegexesCompiledOnce(t *testing.T) {
	_, cache, _ := profileFromProto(booksProfile(), nil)
	m := booksProfile()
	m.Routes = m.Routes[:2]
	_, next, _ := profileFromProto(m, cache)
	for src, re := range next {
		if cache[src] != re {
			t.Errorf("regex %q compiled again", src)
		}
	}
	if len(next) != 2 {
		t.Errorf("cache of the update holds %d regexes, want the 2 in use", len(next))
	}
}

func TestProfileStream(t *testing.T) {
	e := newEnv(t, Options{})
	w := e.client.Profile("books.ns.svc.cluster.local:80")
	defer w.Release()
	if w.Snapshot() != nil || w.Stale() || w.Err() != nil {
		t.Fatalf("pending profile watch: %+v", w.Snapshot())
	}
	s := e.nextProfile()
	if s.req.GetPath() != "books.ns.svc.cluster.local:80" || s.req.GetContextToken() != testToken {
		t.Fatalf("request %v", s.req)
	}

	// Created.
	s.send <- &destinationv1.GetProfileResponse{Profile: booksProfile()}
	p := waitProfile(t, w, "profile", func(w *ProfileWatch) bool { return w.Snapshot() != nil })
	if r := p.Route("GET", "/books/1"); r == nil || r.Name != "GET /books/{id}" {
		t.Fatalf("route %v", r)
	}

	// Updated: each message replaces the whole profile. An invalid message
	// in between changes nothing.
	s.send <- &destinationv1.GetProfileResponse{}
	updated := booksProfile()
	updated.Routes = []*destinationv1.Route{route("only", mPath("/only"))}
	s.send <- &destinationv1.GetProfileResponse{Profile: updated}
	p = waitProfile(t, w, "updated profile", func(w *ProfileWatch) bool { return len(w.Snapshot().Routes) == 1 })
	if p.Route("GET", "/books/1") != nil || p.Route("GET", "/only").Name != "only" {
		t.Fatalf("updated profile routes %v", p.Routes)
	}

	// Removed: the server sends the default profile.
	s.send <- &destinationv1.GetProfileResponse{Profile: &destinationv1.Profile{FullyQualifiedName: "books.ns.svc.cluster.local"}}
	p = waitProfile(t, w, "default profile", func(w *ProfileWatch) bool { return len(w.Snapshot().Routes) == 0 })
	if p.Route("GET", "/only") != nil || p.RetryBudget != DefaultRetryBudget {
		t.Fatalf("default profile %+v", p)
	}
	if got := e.metric("discovery_invalid_updates_total", kindProfile); got != 1 {
		t.Errorf("invalid updates = %v, want 1", got)
	}

	// A failure keeps the profile, marked stale, until the new stream's
	// first message.
	s.end <- status.Error(codes.Unavailable, "restarting")
	waitProfile(t, w, "stale", func(w *ProfileWatch) bool { return w.Stale() })
	if w.Snapshot() != p {
		t.Fatal("profile changed on failure")
	}
	e.clock.WaitTimers(t, 1)
	e.clock.Advance(e.opts.BackoffMax)
	e.nextProfile().send <- &destinationv1.GetProfileResponse{Profile: booksProfile()}
	p = waitProfile(t, w, "fresh profile", func(w *ProfileWatch) bool { return !w.Stale() })
	if len(p.Routes) != 6 || !errors.Is(w.Err(), nil) {
		t.Fatalf("profile after reconnect: %+v", p)
	}
	if got := e.metric("discovery_reconnects_total", kindProfile); got != 1 {
		t.Errorf("reconnects = %v, want 1", got)
	}
}
