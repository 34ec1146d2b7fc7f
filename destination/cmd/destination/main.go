// Command destination serves service discovery and service profiles to the
// mesh's proxies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/linkerd-go/linkerd-go/destination/internal/app"
)

// version is set at link time (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := app.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "destination:", err)
		return 2
	}
	log := app.NewLogger(cfg, os.Stderr)
	klog.SetLogger(log.WithName("client-go"))
	log.Info("starting", "version", version)

	var rc *rest.Config
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		log.Error(err, "no Kubernetes configuration")
		return 1
	}
	rc.UserAgent = "linkerd-destination"
	deps := app.Deps{Log: log}
	if deps.Kube, err = kubernetes.NewForConfig(rc); err == nil {
		if deps.Metadata, err = metadata.NewForConfig(rc); err == nil {
			deps.Dynamic, err = dynamic.NewForConfig(rc)
		}
	}
	if err != nil {
		log.Error(err, "building Kubernetes clients")
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, cfg, deps); err != nil {
		log.Error(err, "destination stopped")
		return 1
	}
	return 0
}
