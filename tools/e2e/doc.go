// Package e2e holds the tier-3 tests: the mesh installed and exercised on
// the real single-node dev cluster (internal/cluster), the way a user does
// it. Build tag e2e; they need root, bring the cluster up themselves (and
// fail if one is already running), and tear it down when they end, pass or
// fail, checking that the host is left as it was.
//
//	cd tools && GOWORK=off go test -count=1 -tags e2e ./e2e/
//
// TestInstall builds the component images for this machine's architecture
// (internal/images), loads them, and runs the install steps of SPEC §6
// verbatim with the pinned helm binary: linkerd-crds, then
// linkerd-control-plane with --set-file for the trust anchor and issuer; it
// waits for every control-plane pod to be Ready, checks that their proxies
// hold certificates and that the injector's webhook injects, upgrades
// destination's image tag alone and checks that nothing else restarts,
// uninstalls, and installs again in the cert-manager layout
// (identity.issuer.scheme=kubernetes.io/tls with the issuer Secret written
// beforehand).
package e2e
