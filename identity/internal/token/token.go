// Package token checks a proxy's ServiceAccount token with a Kubernetes
// TokenReview and says which ServiceAccount it belongs to.
package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
)

// MaxLength is the longest token accepted. Projected ServiceAccount tokens
// are about a kilobyte; the bound keeps the API server from being asked
// about megabytes.
const MaxLength = 16 << 10

// Errors of Review. Every error it returns wraps exactly one of them.
var (
	// ErrMalformed: the token is empty, too long, or not a compact JWT.
	ErrMalformed = errors.New("malformed token")
	// ErrUnavailable: the Kubernetes API could not be asked.
	ErrUnavailable = errors.New("token review unavailable")
	// ErrUnauthenticated: the Kubernetes API did not accept the token for
	// the audience.
	ErrUnauthenticated = errors.New("token not authenticated")
	// ErrNotServiceAccount: the token is valid but is not a ServiceAccount's
	// (or its names cannot form an identity).
	ErrNotServiceAccount = errors.New("token is not a ServiceAccount's")
)

// ServiceAccount names the ServiceAccount a token belongs to.
type ServiceAccount struct {
	Namespace, Name string
}

// Reviewer says whose token a token is.
type Reviewer interface {
	Review(ctx context.Context, token []byte) (ServiceAccount, error)
}

// CheckFormat reports whether token looks like a compact JWT (three
// non-empty base64url segments) no longer than MaxLength, without checking
// anything cryptographic: garbage is refused before the API server sees it.
func CheckFormat(token []byte) error {
	if len(token) == 0 {
		return fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(token) > MaxLength {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(token), MaxLength)
	}
	dots, seg := 0, 0
	for _, c := range token {
		switch {
		case c == '.':
			if seg == 0 {
				return fmt.Errorf("%w: empty JWT segment", ErrMalformed)
			}
			dots, seg = dots+1, 0
			continue
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
		default:
			return fmt.Errorf("%w: not a compact JWT (byte %#x)", ErrMalformed, c)
		}
		seg++
	}
	if dots != 2 || seg == 0 {
		return fmt.Errorf("%w: not a compact JWT (%d segments)", ErrMalformed, dots+1)
	}
	return nil
}

// KubeReviewer checks tokens with TokenReviews, for one audience.
type KubeReviewer struct {
	client   authnv1client.TokenReviewInterface
	audience string
	timeout  time.Duration
}

// NewKubeReviewer returns a Reviewer that asks the Kubernetes API, each
// review bounded by timeout, whether a token is valid for audience.
func NewKubeReviewer(client authnv1client.TokenReviewInterface, audience string, timeout time.Duration) *KubeReviewer {
	return &KubeReviewer{client: client, audience: audience, timeout: timeout}
}

// Review checks token with a TokenReview. The token must be valid for the
// reviewer's audience (a token minted for another audience is refused, and
// so is the answer of an authenticator that does not say which audiences it
// checked), and must belong to a ServiceAccount whose namespace and name are
// DNS labels.
func (r *KubeReviewer) Review(ctx context.Context, token []byte) (ServiceAccount, error) {
	if err := CheckFormat(token); err != nil {
		return ServiceAccount{}, err
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	tr, err := r.client.Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: string(token), Audiences: []string{r.audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return ServiceAccount{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st := tr.Status
	if !st.Authenticated {
		msg := st.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return ServiceAccount{}, fmt.Errorf("%w: %s", ErrUnauthenticated, msg)
	}
	if !slices.Contains(st.Audiences, r.audience) {
		return ServiceAccount{}, fmt.Errorf("%w: not valid for audience %q (valid for %q)", ErrUnauthenticated, r.audience, st.Audiences)
	}
	ns, sa, err := identityv1.ParseServiceAccountUsername(st.User.Username)
	if err != nil {
		return ServiceAccount{}, fmt.Errorf("%w: %w", ErrNotServiceAccount, err)
	}
	return ServiceAccount{Namespace: ns, Name: sa}, nil
}
