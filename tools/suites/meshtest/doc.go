// Package meshtest holds the tests and benchmarks of the whole mesh on the
// set-up that the meshlab library builds on one machine, without a kubelet:
// a real etcd and kube-apiserver (tools/testkit/kubetest), the identity and
// destination binaries, and two pod-like network namespaces on a bridge,
// each programmed by the proxy-init binary and running the proxy binary
// beside an application that knows nothing about the mesh. Its tests and
// benchmarks are built with -tags integration and need root (see README.md).
package meshtest
