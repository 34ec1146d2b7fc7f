// Package injector is the admission webhook that adds the proxy to meshed
// pods.
package injector
