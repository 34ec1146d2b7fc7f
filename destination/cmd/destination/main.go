// Command destination serves service discovery, service profiles and
// inbound policy to the mesh's proxies.
package main

import (
	"fmt"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/linkerd-go/linkerd-go/component/run"
	"github.com/linkerd-go/linkerd-go/destination/internal/app"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	run.Program[app.Config]{
		Name: "destination", Version: version,
		Config: app.ParseFlags,
		Logger: app.NewLogger,
		New:    newApp,
	}.Main()
}

// newApp builds the Kubernetes clients (typed for the core objects,
// metadata for ReplicaSets and Jobs, dynamic for the CRDs) and the app.
func newApp(cfg app.Config, log logr.Logger) (run.Component, error) {
	klog.SetLogger(log.WithName("client-go"))
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes configuration: %w", err)
	}
	rc.UserAgent = "linkerd-destination/" + version
	deps := app.Deps{Log: log}
	if deps.Kube, err = kubernetes.NewForConfig(rc); err == nil {
		if deps.Metadata, err = metadata.NewForConfig(rc); err == nil {
			deps.Dynamic, err = dynamic.NewForConfig(rc)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("building Kubernetes clients: %w", err)
	}
	return app.New(cfg, deps)
}
