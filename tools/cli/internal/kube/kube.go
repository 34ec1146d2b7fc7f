// Package kube turns the linkerd command's cluster flags (--kubeconfig,
// --context) into Kubernetes clients, the way kubectl loads its
// configuration: --kubeconfig, else $KUBECONFIG, else ~/.kube/config.
package kube

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Flags are the cluster flags.
type Flags struct {
	Kubeconfig string
	Context    string
}

// RESTConfig loads the client configuration.
func (f Flags) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "linkerd-go-cli"
	return cfg, nil
}

// Clients are the clients the commands use.
type Clients struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// NewClients makes the clients for a configuration.
func NewClients(cfg *rest.Config) (*Clients, error) {
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: cfg, Kube: k, Dynamic: d}, nil
}

// Clients loads the configuration and makes the clients.
func (f Flags) Clients() (*Clients, error) {
	cfg, err := f.RESTConfig()
	if err != nil {
		return nil, err
	}
	return NewClients(cfg)
}
