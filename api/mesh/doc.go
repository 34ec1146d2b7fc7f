// Package mesh holds the names and numbers every component of the mesh must
// agree on: the proxy's well-known ports, the l5d-* HTTP headers, and the
// port-list syntax of annotations and flags. They are part of the
// compatibility surface with Linkerd: change none of them.
package mesh
