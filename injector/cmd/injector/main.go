// Command injector is the mesh's mutating admission webhook: it adds the
// linkerd-init step and the linkerd-proxy container to pods that ask for the
// mesh. See the module's README for its flags, config file and metrics.
package main

import (
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkerd-go/linkerd-go/component/run"
	"github.com/linkerd-go/linkerd-go/injector/internal/app"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	run.Program[app.Config]{
		Name: "injector", Version: version,
		Config: func(args []string, stderr io.Writer) (app.Config, error) {
			cfg, err := app.ParseFlags(args, stderr)
			cfg.Version = version
			return cfg, err
		},
		Logger: app.NewLogger,
		New:    newApp,
	}.Main()
}

// newApp builds the Kubernetes client (namespaces, Events) and the app.
func newApp(cfg app.Config, log logr.Logger) (run.Component, error) {
	rest, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes API configuration: %w", err)
	}
	rest.UserAgent = "linkerd-proxy-injector/" + version
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	return app.New(cfg, app.Deps{Kube: client, Log: log})
}
