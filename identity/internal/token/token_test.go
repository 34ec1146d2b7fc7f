package token

import (
	"context"
	"errors"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestCheckFormat(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", true},
		{"a.b.c", true},
		{"a-_.b=.c", true},
		{"", false},
		{"a.b", false},
		{"a.b.c.d", false},
		{".b.c", false},
		{"a..c", false},
		{"a.b.", false},
		{"a.b.c ", false},
		{"a.b.c\n", false},
		{"a.b/c.d", false},
		{"a." + strings.Repeat("b", MaxLength) + ".c", false},
	} {
		err := CheckFormat([]byte(tc.token))
		if (err == nil) != tc.ok {
			t.Errorf("CheckFormat(%.20q) = %v, want ok %v", tc.token, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("CheckFormat(%.20q) = %v, not ErrMalformed", tc.token, err)
		}
	}
}

func TestKubeReviewer(t *testing.T) {
	const tok = "a.b.c"
	for _, tc := range []struct {
		name   string
		status authnv1.TokenReviewStatus
		apiErr error
		want   error
		sa     ServiceAccount
	}{
		{name: "ServiceAccount token", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"identity.l5d.io"},
			User: authnv1.UserInfo{Username: "system:serviceaccount:emojivoto:web"}}, sa: ServiceAccount{Namespace: "emojivoto", Name: "web"}},
		{name: "not authenticated", status: authnv1.TokenReviewStatus{Error: "token has expired"}, want: ErrUnauthenticated},
		{name: "not authenticated, no reason", status: authnv1.TokenReviewStatus{}, want: ErrUnauthenticated},
		{name: "another audience", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"https://kubernetes.default.svc"},
			User: authnv1.UserInfo{Username: "system:serviceaccount:emojivoto:web"}}, want: ErrUnauthenticated},
		{name: "authenticator that ignores audiences", status: authnv1.TokenReviewStatus{Authenticated: true,
			User: authnv1.UserInfo{Username: "system:serviceaccount:emojivoto:web"}}, want: ErrUnauthenticated},
		{name: "a user, not a ServiceAccount", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"identity.l5d.io"},
			User: authnv1.UserInfo{Username: "alice"}}, want: ErrNotServiceAccount},
		{name: "ServiceAccount name with a dot", status: authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"identity.l5d.io"},
			User: authnv1.UserInfo{Username: "system:serviceaccount:emojivoto:web.v2"}}, want: ErrNotServiceAccount},
		{name: "API error", apiErr: errors.New("connection refused"), want: ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			var got *authnv1.TokenReview
			client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
				got = a.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
				if tc.apiErr != nil {
					return true, nil, tc.apiErr
				}
				out := got.DeepCopy()
				out.Status = tc.status
				return true, out, nil
			})
			r := NewKubeReviewer(client.AuthenticationV1().TokenReviews(), "identity.l5d.io", 0)
			sa, err := r.Review(context.Background(), []byte(tok))
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if sa != tc.sa {
				t.Errorf("ServiceAccount %+v, want %+v", sa, tc.sa)
			}
			if got.Spec.Token != tok || len(got.Spec.Audiences) != 1 || got.Spec.Audiences[0] != "identity.l5d.io" {
				t.Errorf("review spec %+v", got.Spec)
			}
		})
	}
	t.Run("malformed token never reaches the API", func(t *testing.T) {
		client := fake.NewClientset()
		r := NewKubeReviewer(client.AuthenticationV1().TokenReviews(), "identity.l5d.io", 0)
		if _, err := r.Review(context.Background(), []byte("nope")); !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v", err)
		}
		if n := len(client.Actions()); n != 0 {
			t.Errorf("%d API calls", n)
		}
	})
}
