package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	destinationv1 "github.com/linkerd-go/linkerd-go/api/linkerd/destination/v1"
	identityv1 "github.com/linkerd-go/linkerd-go/api/linkerd/identity/v1"
	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/check"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/version"
)

// versionInfo is what `linkerd version` reports.
type versionInfo struct {
	// Client is the version of this binary.
	Client string `json:"client"`
	// APIServices are the gRPC services (with their versioned packages) this
	// client was built against.
	APIServices []string `json:"apiServices"`
	// ControlPlane are the installed components (without --client).
	ControlPlane []componentVersion `json:"controlPlane,omitempty"`
	// ServerError says why the control plane's versions are unavailable.
	ServerError string `json:"serverError,omitempty"`
}

// componentVersion is one control-plane component's version: the tag of
// its image and of its pods' proxy, as its Deployment asks for them.
type componentVersion struct {
	Component    string `json:"component"`
	Deployment   string `json:"deployment"`
	Version      string `json:"version"`
	Image        string `json:"image"`
	ProxyVersion string `json:"proxyVersion"`
	// ReadyReplicas/Replicas: how many pods run it.
	ReadyReplicas int32 `json:"readyReplicas"`
	Replicas      int32 `json:"replicas"`
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

const versionUsage = `version [--client] [-o text|json]

Prints this client's version and the versioned API services it speaks, and
(without --client) the version of each control-plane component: the tag of
the component's image in its Deployment (what the chart's
<component>.image.tag set, and what "helm upgrade --set
destination.image.tag=…" changes), with the proxy version of its pods (the
pod template's linkerd.io/proxy-version annotation) and how many replicas
are ready. When the cluster cannot be reached the server part says
"unavailable" and the command still succeeds, as Linkerd's does.

Flags:`

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", versionUsage, stderr)
	var cf clusterFlags
	cf.register(fs)
	clientOnly := fs.Bool("client", false, "print the client's version only (no cluster access)")
	output := outputFlag(fs, "text", "json")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	if err := checkOutput(*output, "text", "json"); err != nil {
		return err
	}
	info := clientVersionInfo()
	if !*clientOnly {
		components, err := func() ([]componentVersion, error) {
			clients, err := cf.Clients()
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return controlPlaneVersions(ctx, clients.Kube, cf.controlPlaneNS)
		}()
		info.ControlPlane = components
		if err != nil {
			info.ServerError = err.Error()
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Client version: %s\nAPI services:   %s\n", info.Client, strings.Join(info.APIServices, ", "))
	if !*clientOnly {
		if info.ServerError != "" {
			fmt.Fprintf(&b, "Server version: unavailable (%s)\n", info.ServerError)
		} else {
			b.WriteString("Server version:\n")
			tw := tabwriter.NewWriter(&b, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "  COMPONENT\tVERSION\tPROXY\tREADY\tIMAGE")
			for _, c := range info.ControlPlane {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d/%d\t%s\n", c.Component, c.Version, c.ProxyVersion, c.ReadyReplicas, c.Replicas, c.Image)
			}
			tw.Flush()
		}
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

// controlPlaneVersions reads the control plane's Deployments.
func controlPlaneVersions(ctx context.Context, client kubernetes.Interface, ns string) ([]componentVersion, error) {
	var out []componentVersion
	for _, name := range check.Deployments {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return out, fmt.Errorf("deployment %s/%s: %w", ns, name, err)
		}
		c := componentVersion{
			Component:     d.Spec.Template.Labels[mesh.LabelControlPlaneComp],
			Deployment:    name,
			ProxyVersion:  d.Spec.Template.Annotations[mesh.AnnotationProxyVersion],
			ReadyReplicas: d.Status.ReadyReplicas,
		}
		if d.Spec.Replicas != nil {
			c.Replicas = *d.Spec.Replicas
		}
		// The component is the one container that is not the proxy.
		for _, ct := range d.Spec.Template.Spec.Containers {
			if ct.Name != mesh.ProxyContainerName {
				c.Image = ct.Image
				c.Version = imageTag(ct.Image)
				break
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// imageTag returns an image reference's tag (or digest), "latest" if none.
func imageTag(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}
