// Package e2e holds the tier-3 tests: the mesh installed and exercised on
// the real single-node dev cluster (tools/dev/cluster), the way a user does
// it. Build tag e2e; they need root, bring the cluster up themselves (and
// fail if one is already running), and tear it down when they end, pass or
// fail, checking that the host is left as it was.
//
//	cd tools/suites && GOWORK=off go test -count=1 -tags e2e ./e2e/
//
// TestMesh brings the cluster up once, builds the component images and the
// demo app's (tools/dev/demo) for this machine's architecture while it
// comes up, loads them, and then, in order:
//
//   - install: the README's install steps verbatim with the pinned helm
//     binary (linkerd-crds, then linkerd-control-plane with --set-file for
//     the trust anchor and issuer); every control-plane pod Ready with its
//     proxy certified; the injector's webhook injecting;
//   - demo: the demo app in namespace demo (annotated linkerd.io/inject:
//     enabled): every pod with the proxy as a native sidecar, certified for
//     its ServiceAccount's identity; a pod annotated disabled left alone;
//     frontend → backend traffic mTLS (tls="true", server_id and client_id
//     the two identities, in the proxies' metrics read through pods/proxy);
//     requests spread over the 3 backend replicas; a meshed Job completing;
//     linkerd stat showing traffic at 100% success; linkerd check passing;
//     the destination pod deleted with zero failed requests from the load
//     generator and the frontend's proxy until well after its replacement
//     is Ready; a control-plane outage: identity and destination scaled to
//     zero, a backend pod deleted (its replacement created while identity
//     is down) and the outage held for a minute, with zero failed requests,
//     the replacement certified without a restart once identity is back
//     and served by the frontend soon after destination is Ready; then the
//     next steps `make demo` prints (demo.NextSteps, the
//     list dev demo prints), typed as printed into one shell started in the
//     checkout, in workspace mode as in a fresh clone (GOWORK and GOFLAGS
//     unset): each exits 0 and shows the demo (linkerd stat at 100%, linkerd
//     check passing, the frontend proxy's metrics, the backends'
//     identities, the pods Running); the last of them, make cluster-down,
//     is typed at the very end and must leave nothing of the cluster
//     running;
//   - upgrade-destination-alone: the README's component-change lines (the
//     block after `<!-- e2e: component-change`), as written there: dev
//     images for destination alone with tag my-fix, dev cluster load, helm
//     upgrade of destination's image tag, which changes nothing else;
//   - check-identity-scaled-to-zero: linkerd check fails and says so;
//   - uninstall, then cert-manager: the control plane again with
//     identity.issuer.scheme=kubernetes.io/tls and the issuer Secret written
//     beforehand (a 12-hour issuer): identity uses it, the demo in namespace
//     demo-cm is certified and mTLS, and linkerd check fails on the
//     issuer's expiry.
//
// On failure each namespace's pod statuses, container logs (previous runs
// too) and events are printed.
package e2e
