// Package certify serves linkerd.identity.v1.IdentityService: it checks a
// proxy's request (identity name, CSR, ServiceAccount token) and signs its
// certificate with the current issuer.
package certify

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	"github.com/linkerd-go/linkerd-go/identity/internal/metrics"
	"github.com/linkerd-go/linkerd-go/identity/internal/pki"
	"github.com/linkerd-go/linkerd-go/identity/internal/token"
)

// Limits on the request's fields.
const (
	// MaxIdentityLength is the longest identity name (a DNS name).
	MaxIdentityLength = 253
	// MaxCSRLength bounds the CSR; a P-256 request with one long name is
	// well under a kilobyte.
	MaxCSRLength = 4 << 10
	// MaxTokenLength bounds the token.
	MaxTokenLength = token.MaxLength
)

// Config configures a Service.
type Config struct {
	// TrustDomain and ControlPlaneNamespace are the parts every identity
	// this CA issues must end with.
	TrustDomain           string
	ControlPlaneNamespace string
	// MaxConcurrent bounds the Certify calls in progress; more are refused
	// with RESOURCE_EXHAUSTED.
	MaxConcurrent int
}

// Service implements identityv1.IdentityServiceServer.
type Service struct {
	identityv1.UnimplementedIdentityServiceServer

	cfg      Config
	ca       *pki.CA
	reviewer token.Reviewer
	metrics  *metrics.Metrics
	log      logr.Logger
	slots    chan struct{}
}

// New returns a Service that signs with ca and checks tokens with reviewer.
func New(cfg Config, ca *pki.CA, reviewer token.Reviewer, m *metrics.Metrics, log logr.Logger) *Service {
	return &Service{
		cfg:      cfg,
		ca:       ca,
		reviewer: reviewer,
		metrics:  m,
		log:      log,
		slots:    make(chan struct{}, max(cfg.MaxConcurrent, 1)),
	}
}

// rejection is a refused request: the gRPC status and the metric's reason.
type rejection struct {
	reason string
	st     *status.Status
}

func (r *rejection) Error() string { return r.st.Message() }

func reject(reason string, code codes.Code, format string, args ...any) *rejection {
	return &rejection{reason: reason, st: status.Newf(code, format, args...)}
}

// Certify checks the request and, if the token entitles the caller to the
// identity, signs its CSR. The checks run from the cheapest to the one that
// asks the Kubernetes API; the first that fails decides the status code.
func (s *Service) Certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	start := time.Now()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.metrics.Rejected.WithLabelValues(metrics.ReasonOverloaded).Inc()
		return nil, status.Error(codes.ResourceExhausted, "too many Certify requests in progress; retry with backoff")
	}
	resp, err := s.certify(ctx, req)
	var rej *rejection
	if errors.As(err, &rej) {
		s.metrics.Rejected.WithLabelValues(rej.reason).Inc()
		s.metrics.Duration.WithLabelValues("rejected").Observe(time.Since(start).Seconds())
		s.log.V(1).Info("certificate refused", "identity", truncate(req.GetIdentity()), "reason", rej.reason, "code", rej.st.Code().String(), "err", rej.st.Message())
		return nil, rej.st.Err()
	}
	s.metrics.Issued.Inc()
	s.metrics.Duration.WithLabelValues("issued").Observe(time.Since(start).Seconds())
	s.log.V(2).Info("certificate issued", "identity", req.GetIdentity(), "validUntil", resp.GetValidUntil().AsTime())
	return resp, nil
}

func (s *Service) certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	iss := s.ca.Issuer()
	if iss == nil {
		return nil, reject(metrics.ReasonNoIssuer, codes.Unavailable, "no issuer loaded yet; retry with backoff")
	}
	if err := iss.ValidAt(s.ca.Now()); err != nil {
		return nil, reject(metrics.ReasonNoIssuer, codes.Unavailable, "no valid issuer: %v; retry with backoff", err)
	}

	id, tok, csr := req.GetIdentity(), req.GetToken(), req.GetCertificateSigningRequest()
	switch {
	case id == "":
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "identity is missing")
	case len(id) > MaxIdentityLength:
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "identity is %d bytes, more than %d", len(id), MaxIdentityLength)
	case len(tok) == 0:
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "token is missing")
	case len(tok) > MaxTokenLength:
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "token is %d bytes, more than %d", len(tok), MaxTokenLength)
	case len(csr) == 0:
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "certificate_signing_request is missing")
	case len(csr) > MaxCSRLength:
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "certificate_signing_request is %d bytes, more than %d", len(csr), MaxCSRLength)
	}
	name, err := identityv1.ParseName(id)
	if err != nil {
		return nil, reject(metrics.ReasonBadRequest, codes.InvalidArgument, "identity: %v", err)
	}
	if name.TrustDomain != s.cfg.TrustDomain || name.ControlPlaneNamespace != s.cfg.ControlPlaneNamespace {
		return nil, reject(metrics.ReasonForeignIdentity, codes.InvalidArgument,
			"identity %q is not issued here: this CA issues identities ending in \".serviceaccount.identity.%s.%s\"",
			id, s.cfg.ControlPlaneNamespace, s.cfg.TrustDomain)
	}

	pub, err := pki.CheckCSR(csr, id)
	switch {
	case errors.Is(err, pki.ErrCSRNames):
		return nil, reject(metrics.ReasonCSRNames, codes.FailedPrecondition, "%v", err)
	case err != nil:
		return nil, reject(metrics.ReasonMalformedCSR, codes.InvalidArgument, "%v", err)
	}

	if err := token.CheckFormat(tok); err != nil {
		return nil, reject(metrics.ReasonMalformedToken, codes.InvalidArgument, "%v", err)
	}
	sa, err := s.reviewer.Review(ctx, tok)
	switch {
	case errors.Is(err, token.ErrMalformed):
		return nil, reject(metrics.ReasonMalformedToken, codes.InvalidArgument, "%v", err)
	case errors.Is(err, token.ErrUnauthenticated):
		return nil, reject(metrics.ReasonUnauthenticated, codes.Unauthenticated, "%v", err)
	case errors.Is(err, token.ErrNotServiceAccount):
		return nil, reject(metrics.ReasonIdentityDenied, codes.FailedPrecondition, "%v", err)
	case err != nil:
		if ctx.Err() != nil {
			return nil, reject(metrics.ReasonTokenReview, status.FromContextError(ctx.Err()).Code(), "reviewing the token: %v", ctx.Err())
		}
		return nil, reject(metrics.ReasonTokenReview, codes.Unavailable, "could not review the token: %v; retry with backoff", err)
	}
	if sa.Namespace != name.Namespace || sa.Name != name.ServiceAccount {
		return nil, reject(metrics.ReasonIdentityDenied, codes.FailedPrecondition,
			"the token belongs to ServiceAccount %s/%s, which may not have identity %q", sa.Namespace, sa.Name, id)
	}

	leaf, err := s.ca.Sign(pub, id)
	switch {
	case errors.Is(err, pki.ErrNoIssuer):
		return nil, reject(metrics.ReasonNoIssuer, codes.Unavailable, "no issuer loaded; retry with backoff")
	case err != nil:
		// The issuer may have expired or been replaced since the first check.
		if s.ca.Issuer() == nil || s.ca.Issuer().ValidAt(s.ca.Now()) != nil {
			return nil, reject(metrics.ReasonNoIssuer, codes.Unavailable, "no valid issuer: %v; retry with backoff", err)
		}
		s.log.Error(err, "signing a leaf certificate", "identity", id)
		return nil, reject(metrics.ReasonInternal, codes.Internal, "signing failed")
	}
	return &identityv1.CertifyResponse{
		LeafCertificate:          leaf.DER,
		IntermediateCertificates: leaf.Chain,
		ValidUntil:               timestamppb.New(leaf.Cert.NotAfter),
	}, nil
}

// truncate bounds a client-controlled string before it is logged.
func truncate(s string) string {
	if len(s) > MaxIdentityLength {
		return s[:MaxIdentityLength] + "..."
	}
	return s
}
