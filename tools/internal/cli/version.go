package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/tools/internal/version"
)

// versionInfo is what `linkerd version` reports.
type versionInfo struct {
	// Client is the version of this binary.
	Client string `json:"client"`
	// APIServices are the gRPC services (with their versioned packages) this
	// client was built against.
	APIServices []string `json:"apiServices"`
}

func clientVersionInfo() versionInfo {
	return versionInfo{
		Client: version.Version,
		APIServices: []string{
			identityv1.IdentityService_ServiceDesc.ServiceName,
			destinationv1.DestinationService_ServiceDesc.ServiceName,
			policyv1.InboundPolicyService_ServiceDesc.ServiceName,
		},
	}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version [-o text|json]", stderr)
	output := fs.String("o", "text", "output format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	info := clientVersionInfo()
	switch *output {
	case "text":
		_, err := fmt.Fprintf(stdout, "Client version: %s\nAPI services:   %s\n", info.Client, strings.Join(info.APIServices, ", "))
		return err
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	default:
		return fmt.Errorf("%w: output format %q is not text or json", errUsage, *output)
	}
}
