// Package identity is the mesh's certificate authority: it turns a proxy's
// ServiceAccount token and CSR into a short-lived workload certificate.
package identity
