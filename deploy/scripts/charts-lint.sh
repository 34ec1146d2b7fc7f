#!/usr/bin/env bash
# charts-lint.sh HELM — lint the charts and check that bad values are refused.
#
#   make charts-lint     (passes the pinned helm binary of the k8s-bins set)
#
# 1. `helm lint --strict` of linkerd-crds, the partials library, and
#    linkerd-control-plane with each value set: default (the seed's
#    --set-file flags), HA (values-ha.yaml) and cert-manager
#    (testdata/values-cert-manager.yaml), using the test certificates in
#    linkerd-control-plane/testdata.
# 2. Every case of linkerd-control-plane/testdata/bad-values.tsv: `helm
#    template` must fail, and its error must contain the expected message.
#
# Exits non-zero if anything fails, after running every check.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 HELM" >&2
	exit 2
fi
helm=$1
if [[ ! -x $helm ]]; then
	echo "charts-lint: $helm is not an executable helm binary (run make k8s-bins)" >&2
	exit 2
fi

charts=$(cd "$(dirname "$0")/../charts" && pwd)
cp=$charts/linkerd-control-plane
# The Kubernetes version helm assumes when it has no cluster: the chart needs
# native sidecars (>= 1.29), and helm's own default is older.
kube_version=1.37.2
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# helm prints a line when it follows the charts/partials link; it is expected.
quiet() { grep -v 'found symbolic link in path' || true; }

lint() {
	local name=$1
	shift
	local out
	if out=$("$helm" lint --strict --kube-version "$kube_version" "$@" 2>&1); then
		echo "ok   lint $name"
	else
		fail "helm lint $name:"
		echo "$out" | quiet >&2
	fi
}

cd "$cp"
anchors=(--set-file identityTrustAnchorsPEM=testdata/ca.crt)
issuer=(--set-file identity.issuer.tls.crtPEM=testdata/issuer.crt --set-file identity.issuer.tls.keyPEM=testdata/issuer.key)

lint linkerd-crds "$charts/linkerd-crds"
lint partials "$charts/partials"
lint "linkerd-control-plane (default)" . "${anchors[@]}" "${issuer[@]}"
lint "linkerd-control-plane (HA)" . -f values-ha.yaml "${anchors[@]}" "${issuer[@]}"
lint "linkerd-control-plane (cert-manager)" . -f testdata/values-cert-manager.yaml "${anchors[@]}"

while IFS=$'\t' read -r name want args; do
	[[ -z $name || $name == \#* ]] && continue
	# shellcheck disable=SC2086 # the arguments column is split at spaces on purpose
	if out=$("$helm" template linkerd-control-plane . -n linkerd --kube-version "$kube_version" $args 2>&1); then
		fail "bad values $name: helm template accepted $args"
	elif [[ $out != *"$want"* ]]; then
		fail "bad values $name: the error does not say \"$want\":"
		echo "$out" | quiet >&2
	else
		echo "ok   refuses $name"
	fi
done <testdata/bad-values.tsv

if ((failures > 0)); then
	echo "charts-lint: $failures check(s) failed" >&2
	exit 1
fi
echo "charts-lint: all checks passed"
