package commands

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/cli/internal/kube"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
)

// resolvePods turns "NAME", "pod/NAME" or "deploy/NAME" into pods with a
// proxy.
func resolvePods(ctx context.Context, client kubernetes.Interface, ns, target string) ([]corev1.Pod, error) {
	kind, name, found := strings.Cut(target, "/")
	if !found {
		kind, name = "pod", target
	}
	var pods []corev1.Pod
	switch strings.ToLower(kind) {
	case "po", "pod", "pods":
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		pods = []corev1.Pod{*p}
	case "deploy", "deployment", "deployments":
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, err
		}
		pods = list.Items
	default:
		return nil, fmt.Errorf("%w: %q: want POD, pod/POD or deploy/NAME", errUsage, target)
	}
	var out []corev1.Pod
	for _, p := range pods {
		if stat.HasProxy(&p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s in namespace %s has no pod with a %s container", target, ns, mesh.ProxyContainerName)
	}
	return out, nil
}

// podsCommand is the flag handling of the commands whose one argument is
// POD, pod/NAME or deploy/NAME: the cluster flags, -n, and -o when the
// command has output formats.
type podsCommand struct {
	fs      *flag.FlagSet
	cf      clusterFlags
	ns      *string
	output  *string
	formats []string
}

// newPodsCommand declares the flags; formats (the first is the default)
// add -o.
func newPodsCommand(name, usage string, stderr io.Writer, formats ...string) *podsCommand {
	c := &podsCommand{fs: newFlagSet(name, usage, stderr), formats: formats}
	c.cf.register(c.fs)
	c.ns = namespaceFlag(c.fs)
	if len(formats) > 0 {
		c.output = outputFlag(c.fs, formats...)
	}
	return c
}

// parse reads args and returns the clients and the selected pods with a
// proxy.
func (c *podsCommand) parse(ctx context.Context, args []string) (*kube.Clients, []corev1.Pod, error) {
	pos, err := parseArgs(c.fs, args, 1, 1)
	if err != nil {
		return nil, nil, err
	}
	if c.output != nil {
		if err := checkOutput(*c.output, c.formats...); err != nil {
			return nil, nil, err
		}
	}
	clients, err := c.cf.Clients()
	if err != nil {
		return nil, nil, err
	}
	pods, err := resolvePods(ctx, clients.Kube, *c.ns, pos[0])
	if err != nil {
		return nil, nil, err
	}
	return clients, pods, nil
}
