// Command identity is the mesh's certificate authority: it serves
// linkerd.identity.v1.IdentityService, turning a proxy's ServiceAccount token
// and CSR into a short-lived workload certificate.
package main

import (
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/linkerd-go/linkerd-go/component/run"
	"github.com/linkerd-go/linkerd-go/identity/internal/app"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	run.Program[app.Config]{
		Name: "identity", Version: version,
		Config: func(args []string, stderr io.Writer) (app.Config, error) {
			cfg, err := app.ParseFlags(args, stderr)
			if err == nil {
				err = cfg.Validate()
			}
			return cfg, err
		},
		Logger: app.NewLogger,
		New:    newApp,
	}.Main()
}

// newApp builds the Kubernetes client (TokenReviews, Events) and the app.
func newApp(cfg app.Config, log logr.Logger) (run.Component, error) {
	klog.SetLogger(log.WithName("client-go"))
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	restCfg.QPS, restCfg.Burst = float32(cfg.KubeAPIQPS), cfg.KubeAPIBurst
	restCfg.UserAgent = "linkerd-identity/" + version
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	return app.New(cfg, app.Deps{Kube: kube, Log: log})
}
