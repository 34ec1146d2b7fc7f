// Package meshlab is the library that sets up the mesh for real on one
// machine, without a kubelet (it has no tests of the mesh itself; meshtest
// holds those): a real etcd and kube-apiserver (tools/testkit/kubetest), the identity and
// destination binaries built from this checkout, and pod-like network
// namespaces on a bridge, each meshed one programmed by the proxy-init
// binary and running the proxy binary beside an application that knows
// nothing about the mesh. The mesh tests (meshtest) and the
// data-plane benchmark (bench) are built on it. It needs root.
//
// Everything it creates is registered on a cleanup stack and removed in
// reverse order by Close, also when Start fails half-way: processes by PID,
// then network namespaces, veths and the bridge by name, then temporary
// folders.
package meshlab
