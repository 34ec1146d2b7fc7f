// Package integration holds the identity component's tier-2 tests and
// benchmarks: the whole component, in process, against a real etcd and
// kube-apiserver (real TokenReviews, RBAC and Events). Build them with
// -tags integration.
package integration
