package inject

// The names the injector reads and writes on pods are the mesh's, in
// api/mesh (Linkerd's exactly: users' manifests carry them). What is the
// injector's alone is here.
const (
	// IdentityEndEntityVolName is the in-memory volume where the proxy
	// keeps its private key and certificate.
	IdentityEndEntityVolName = "linkerd-identity-end-entity"
)
