// Command identity is the mesh's certificate authority: it serves
// linkerd.identity.v1.IdentityService, turning a proxy's ServiceAccount token
// and CSR into a short-lived workload certificate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/linkerd-go/linkerd-go/identity/internal/app"
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
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "identity: %v\n", err)
		return 2
	}
	log, err := app.NewLogger(cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "identity: %v\n", err)
		return 2
	}
	klog.SetLogger(log.WithName("client-go"))
	log.Info("starting", "version", version)

	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		log.Error(err, "loading the Kubernetes client configuration")
		return 1
	}
	restCfg.QPS, restCfg.Burst = float32(cfg.KubeAPIQPS), cfg.KubeAPIBurst
	restCfg.UserAgent = "linkerd-identity"
	kube, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		log.Error(err, "building the Kubernetes client")
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, app.Deps{Kube: kube, Log: log})
	if err != nil {
		log.Error(err, "starting")
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error(err, "stopped")
		return 1
	}
	return 0
}
