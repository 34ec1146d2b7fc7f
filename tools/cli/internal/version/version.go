// Package version holds the version of the tools, set at build time with
//
//	-ldflags "-X github.com/linkerd-go/linkerd-go/tools/cli/internal/version.Version=v1.2.3"
package version

// Version is the release of the tools; "dev" for builds from a checkout.
var Version = "dev"
