// Package identity is the proxy's identity client: it obtains the proxy's
// workload certificate from the control plane's identity service and keeps
// it fresh, installing every new certificate in a [meshtls.Store].
//
// At construction the client makes an ECDSA P-256 private key that lives
// only in memory, and a certificate signing request whose only name is the
// proxy's identity (one DNS SAN, and the same name as Common Name). [Client.Run]
// then calls Certify with that request and the ServiceAccount token projected
// into the pod, which it reads again before every call because the kubelet
// rotates it. The reply's leaf and intermediates, with the private key,
// become a [tls.Certificate] that [meshtls.Store.Set] checks (it must name
// exactly the local identity and chain to the trust anchors) before new
// handshakes use it; connections already made keep the certificate they were
// made with.
//
// Renewal happens at 70% of the certificate's remaining lifetime, clamped to
// [Config.MinRefresh, Config.MaxRefresh] (10s and 24h by default). A failed
// attempt — the service unreachable or refusing, an unreadable token, a
// reply that is malformed or that the Store refuses — is retried after an
// exponential backoff with jitter, from [Config.BackoffBase] (500ms)
// doubling up to a cap: [Config.UncertifiedBackoffMax] (2s) while the proxy
// holds no valid certificate — it is not ready, and its pod waits for it —
// and [Config.BackoffMax] (10s) while it holds one, never past that
// certificate's expiry; meanwhile the previous certificate, if any, stays in
// use. Jitter takes each delay down by up to half. Run returns when its
// context ends.
//
// The connection to the identity service is made with [Dial]: TLS 1.3,
// server certificate verified against the trust anchors and required to name
// exactly the identity service's own identity, no client certificate (the
// token authenticates the proxy). Every Certify gets a gRPC channel of its
// own ([Conn]): the service's name is resolved and a connection made at the
// attempt, so the client's schedule alone says when identity is tried again.
// A long-lived channel would not: after a failed connection it waits out
// gRPC's connection backoff (up to 2 minutes), and after a lookup that finds
// no address (a headless Service scaled to zero) its DNS resolver waits out
// a backoff of its own (up to 2 minutes, not configurable) before it looks
// again, failing every call meanwhile.
//
// # Identity down at pod start
//
// The proxy does not exit and its /live stays 200; /ready answers 503 until
// a certificate is held. Retries come at most UncertifiedBackoffMax apart,
// so the certificate follows within about that of identity answering again.
// The injector's startup probe on /ready (every second, 120 failures) gives
// the proxy two minutes, as Linkerd does; past that the kubelet stops the
// proxy and starts it again, and the client logs "stopping without a
// certificate" with the number of attempts and the last error.
//
// # Metrics
//
// Registered on the Registerer given to [New]:
//
//   - identity_cert_expiration_timestamp_seconds (gauge): when the held
//     certificate chain expires, in seconds since the Unix epoch; 0 until a
//     certificate is held.
//   - identity_cert_refresh_seconds (gauge): seconds from the last attempt to
//     the next one, either the renewal delay or the backoff delay.
//   - identity_cert_refresh_total{result="ok"|"error"} (counter): certification
//     attempts by outcome.
//
// # Logging
//
// Installed certificates are logged at level 0 ("certificate installed";
// after failures with "afterFailures" and "failingFor"). Failures are
// logged as errors ("certification failed") with "failures" (consecutive),
// "retryIn", "nextAttempt", "holdingCertificate" and, without a
// certificate, "waitingFor": the first of a run of failures, any failure
// whose error differs from the previous one, and otherwise at most one line
// per 10s, with "sameErrorSinceLastLine" counting the lines left out. All
// lines carry "identity", the local identity name.
package identity
