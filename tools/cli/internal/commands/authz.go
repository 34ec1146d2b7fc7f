package commands

import (
	"context"
	"fmt"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/cli/authz"
)

// linkerd authz: the inbound policy of a workload's ports.

const authzUsage = `authz POD|pod/NAME|deploy/NAME [-n NAMESPACE] [-o table|json]

Prints, for each TCP port of the selected pods (the proxy's own left out),
the inbound policy their proxies enforce: the Server that describes the port
(or default/<policy> for a port no Server selects), its protocol, and per
route the authorizations that admit clients, the Server's and the route's
(kind/name: AuthorizationPolicy, ServerAuthorization, or default). A route
with none refuses everyone. The answer comes from destination's policy API,
as the proxies get it, through a port-forward to a destination pod (TLS 1.3
checked against the mesh's trust anchors).

Flags:`

func runAuthz(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := newPodsCommand("authz", authzUsage, stderr, "table", "json")
	clients, pods, err := cmd.parse(ctx, args)
	if err != nil {
		return err
	}
	c, err := authz.Connect(ctx, authz.Config{RESTConfig: clients.Config, Kube: clients.Kube, ControlPlaneNamespace: cmd.cf.controlPlaneNS})
	if err != nil {
		return fmt.Errorf("policy service: %w", err)
	}
	defer c.Close()
	rows, err := c.Query(ctx, pods)
	if err != nil {
		return err
	}
	if *cmd.output == "json" {
		return authz.WriteJSON(stdout, rows)
	}
	return authz.WriteTable(stdout, rows)
}
