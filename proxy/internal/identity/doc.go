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
// exponential backoff with jitter, from [Config.BackoffBase] doubling up to
// [Config.BackoffMax] (1s and 1m by default); meanwhile the previous
// certificate, if any, stays in use. Run returns when its context ends.
//
// The connection to the identity service is made with [Dial]: TLS 1.3,
// server certificate verified against the trust anchors and required to name
// exactly the identity service's own identity, no client certificate (the
// token authenticates the proxy).
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
// Installed certificates are logged at level 0 and failures as errors, with
// the keys "identity" (the local identity name) and, for failures, the
// error as the sink names it.
package identity
