// Package crds tests the linkerd-crds Helm chart
// (deploy/charts/linkerd-crds). It has no code of its own: the plain tests
// read every CustomResourceDefinition under the chart's templates/ and check
// its shape (structural schemas, versions, printer columns, no template
// directives); the tests built with -tags integration install the chart into
// a real kube-apiserver (tools/testkit/kubetest, and helm itself) and check that
// typical objects are accepted, wrong ones refused with a message naming the
// field, and that `kubectl get` shows the printer columns.
package crds
