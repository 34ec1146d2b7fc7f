package devcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-go/linkerd-go/tools/cli/check"
	"github.com/linkerd-go/linkerd-go/tools/cli/stat"
	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo"
	"github.com/linkerd-go/linkerd-go/tools/dev/images"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

const demoUsage = `demo [flags]

The first thing to run (make demo). On this machine, needs root:

  1. brings the dev cluster up (or finds it up);
  2. builds the component images and the demo app's for this machine's
     architecture, and loads them into the node;
  3. makes a trust anchor and an issuer (kept in the cache folder, reused
     while valid), and installs the linkerd-crds and linkerd-control-plane
     charts with helm upgrade --install, the README's install values;
  4. annotates namespace --namespace with linkerd.io/inject: enabled and
     deploys the demo app: load → frontend (HTTP/1.1) → backend (gRPC, 3
     replicas), each pod with the proxy as a native sidecar;
  5. waits for every pod to be Ready, runs linkerd check, then prints each
     Deployment's success rate, RPS and latency percentiles read from its
     pods' proxies (linkerd stat) every --interval, --refreshes times.

Running it again reuses what is there. make cluster-down removes it all.`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoUsage, stderr)
	ns := fs.String("namespace", "demo", "`namespace` of the demo app")
	refreshes := fs.Int("refreshes", 6, "`number` of stat tables to print (0 = until Ctrl-C)")
	interval := fs.Duration("interval", 5*time.Second, "`window` of each stat table")
	rate := fs.Float64("rate", 10, "the load generator's `requests per second`")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound of the set-up (everything before the stats)")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *refreshes < 0 || *interval <= 0 || *rate <= 0 {
		return fmt.Errorf("%w: --refreshes must be >= 0, --interval and --rate positive", errUsage)
	}
	start := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(stdout, "demo [%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	setup, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c, kube, root, err := demoSetUp(setup, stdout, step, *ns, *rate)
	if err != nil {
		return err
	}

	step("live stats of namespace %s (inbound traffic of each Deployment's proxies, %s windows)", *ns, *interval)
	for i := 0; *refreshes == 0 || i < *refreshes; i++ {
		rows, err := stat.Collect(ctx, kube, stat.Selector{Namespace: *ns}, *interval)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		fmt.Fprintf(stdout, "\n%s\n", time.Now().Format(time.TimeOnly))
		if err := stat.WriteTable(stdout, rows, false); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nThe mesh and the demo keep running. Next, in a shell, one after another:\n\n")
	return demo.WriteSteps(stdout, demo.NextSteps(root, c.KubeconfigPath(), filepath.Join(c.BinDir, "kubectl"), *ns))
}

// demoSetUp does steps 1–5 but the stats, and returns the cluster, a
// client of it and the checkout's root.
func demoSetUp(ctx context.Context, stdout io.Writer, step func(string, ...any), ns string, rate float64) (*cluster.Cluster, kubernetes.Interface, string, error) {
	c, err := cluster.New(prefixed{w: stdout})
	if err != nil {
		return nil, nil, "", err
	}
	cache, err := kubebins.CacheRoot()
	if err != nil {
		return nil, nil, "", err
	}
	work := filepath.Join(cache, "demo")
	wd, err := os.Getwd()
	if err != nil {
		return nil, nil, "", err
	}
	root, err := images.FindRoot(wd)
	if err != nil {
		return nil, nil, "", err
	}

	step("bringing the dev cluster up (idempotent; logs in %s)", c.LogDir())
	if err := c.Up(ctx); err != nil {
		return nil, nil, "", fmt.Errorf("cluster up: %w", err)
	}
	kube, err := c.Client()
	if err != nil {
		return nil, nil, "", err
	}

	step("building the images (%s, linux/%s) and the demo app's", strings.Join(images.Components, ", "), runtime.GOARCH)
	imageDir := filepath.Join(work, "images")
	res, err := images.Build(ctx, images.Options{Root: root, OutDir: imageDir, Platforms: []string{"linux/" + runtime.GOARCH}, Revision: "demo", Log: io.Discard})
	if err != nil {
		return nil, nil, "", fmt.Errorf("building the images: %w", err)
	}
	tarballs := make([]string, 0, len(res.Images)+1)
	for _, img := range res.Images {
		tarballs = append(tarballs, filepath.Join(imageDir, img.File))
	}
	demoTar, err := demo.BuildImage(ctx, c, imageDir)
	if err != nil {
		return nil, nil, "", fmt.Errorf("building the demo app's image: %w", err)
	}
	tarballs = append(tarballs, demoTar)
	step("loading %d images into the node", len(tarballs))
	for _, t := range tarballs {
		if err := c.LoadImage(ctx, t); err != nil {
			return nil, nil, "", err
		}
	}

	pkiDir := filepath.Join(work, "pki")
	generated, err := demo.EnsurePKI(pkiDir, time.Now(), 60*24*time.Hour)
	if err != nil {
		return nil, nil, "", err
	}
	if generated {
		step("generated a trust anchor and an issuer in %s", pkiDir)
	} else {
		step("reusing the trust anchor and issuer in %s", pkiDir)
	}
	helm := demo.Helm{Bin: filepath.Join(c.BinDir, "helm"), Kubeconfig: c.KubeconfigPath(), Dir: pkiDir, Home: filepath.Join(work, "helm")}
	step("installing the mesh (helm upgrade --install linkerd-crds, linkerd-control-plane)")
	if err := demo.InstallMesh(ctx, helm, root, prefixed{w: stdout}); err != nil {
		return nil, nil, "", err
	}
	step("waiting for the control plane to be Ready")
	if err := demo.Poll(ctx, 5*time.Minute, time.Second, func(ctx context.Context) error {
		return demo.DeploymentsReady(ctx, kube, demo.ControlPlaneNamespace, check.Deployments...)
	}); err != nil {
		return nil, nil, "", fmt.Errorf("control plane: %w", err)
	}

	step("deploying the demo app in namespace %s (annotated linkerd.io/inject: enabled)", ns)
	if err := demo.Apply(ctx, kube, demo.Objects(demo.Options{Namespace: ns, Rate: rate})...); err != nil {
		return nil, nil, "", err
	}
	// Pods made while the injector was not there have no proxy: replace
	// them (their Deployments make new ones, which the injector meshes).
	for _, d := range demo.Deployments {
		pods, err := demo.Pods(ctx, kube, ns, d)
		if err != nil {
			return nil, nil, "", err
		}
		for _, p := range pods {
			if !stat.HasProxy(&p) {
				step("pod %s has no proxy (made before the mesh was installed): replacing it", p.Name)
				if err := kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
					return nil, nil, "", err
				}
			}
		}
	}
	step("waiting for %v to be Ready", demo.Deployments)
	if err := demo.Poll(ctx, 5*time.Minute, time.Second, func(ctx context.Context) error {
		return demo.DeploymentsReady(ctx, kube, ns, demo.Deployments...)
	}); err != nil {
		return nil, nil, "", fmt.Errorf("demo app: %w", err)
	}

	step("linkerd check")
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigPath())
	if err != nil {
		return nil, nil, "", err
	}
	report, err := check.Run(ctx, check.Config{RESTConfig: rc, Proxy: true, ProxyNamespace: ns, InjectionProbe: true, InjectionProbeNamespace: ns})
	if err != nil {
		return nil, nil, "", fmt.Errorf("linkerd check: %w", err)
	}
	if failed := report.Failed(); len(failed) > 0 {
		var msgs []error
		for _, f := range failed {
			msgs = append(msgs, fmt.Errorf("× %s: %s", f.Description, f.Error))
		}
		return nil, nil, "", fmt.Errorf("linkerd check failed:\n%w", errors.Join(msgs...))
	}
	step("linkerd check: all %d checks passed", len(report.Results))
	return c, kube, root, nil
}

// prefixed indents the lines of the cluster's and helm's progress under the
// demo's steps.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "      %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}
