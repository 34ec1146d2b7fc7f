// Package mesh holds the names and numbers every component of the mesh must
// agree on: the proxy's well-known ports, the l5d-* HTTP headers, the
// port-list syntax of annotations and flags, and the labels and
// annotations on Kubernetes objects. They are part of the
// compatibility surface with Linkerd: change none of them.
package mesh
