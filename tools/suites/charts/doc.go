// Package charts tests the linkerd-control-plane Helm chart
// (deploy/charts/linkerd-control-plane) with the real helm binary of the
// k8s-bins set (tier 2, build tag integration):
//
//   - golden renders of the default, HA and cert-manager value sets
//     (testdata/*.yaml; rewrite them with `go test -tags integration
//     ./charts -update` and read the diff);
//   - the webhook certificate the chart generates when none is given;
//   - deploy/scripts/charts-lint.sh (helm lint of every chart and value set);
//   - every bad value set of the chart's testdata/bad-values.tsv refused with
//     its message;
//   - every rendered object accepted by a real kube-apiserver (server-side
//     dry-run with strict field validation);
//   - helm install, then helm upgrade --reuse-values of one component's
//     image tag against a real kube-apiserver: only that Deployment changes,
//     and the webhook certificate is kept.
//
// The package has no code of its own.
package charts
