package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Down stops every process of the cluster and undoes every change it made
// to the host. It works from any state (nothing running, a failed up, a
// crashed component) and keeps PKI, configuration, images and logs, so the
// next Up is quick and hands out the same kubeconfig.
func (c *Cluster) Down(ctx context.Context) error {
	start := time.Now()
	if _, err := os.Stat(c.StateDir); os.IsNotExist(err) {
		c.logf("nothing to do: no state in %s", c.StateDir)
		return nil
	}
	// Let the kubelet tear pods down through the CRI first, so CNI DEL
	// releases addresses and removes the veths cleanly.
	if _, ok := c.running("kubelet"); ok {
		if _, ok := c.running("kube-apiserver"); ok {
			c.deleteWorkloads(ctx)
		}
	}
	c.stopDaemons(10*time.Second, "kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager")
	if _, ok := c.running("containerd"); ok {
		// Whatever containers are left: kill them through containerd.
		if out, err := c.ctr(ctx, "tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(string(out)) {
				_, _ = c.ctr(ctx, "tasks", "delete", "--force", id)
			}
		}
	}
	c.stopDaemons(10*time.Second, "containerd")
	// Shims outlive containerd; they are ours if they serve our socket.
	for _, pid := range c.shimPIDs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		c.logf("killed leftover shim (pid %d)", pid)
	}
	// The API server hangs in shutdown if etcd goes first.
	c.stopDaemons(10*time.Second, "kube-apiserver")
	c.stopDaemons(10*time.Second, "etcd")

	var errs []error
	n, uerrs := unmountUnder(c.StateDir)
	errs = append(errs, uerrs...)
	if n > 0 {
		c.logf("unmounted %d mounts", n)
	}
	errs = append(errs, c.restoreHost(ctx)...)
	// Runtime state; PKI, kubeconfigs, configs, images and logs stay.
	for _, d := range []string{
		"etcd", "containerd/root", "containerd/state", "containerd/runc", "containerd/containerd.sock",
		"containerd/containerd.sock.ttrpc", "kubelet/pods", "kubelet/plugins", "kubelet/plugins_registry",
		"kubelet/pod-resources", "kubelet/checkpoints", "kubelet/pki", "kubelet/device-plugins", "cni/ipam", "podlogs",
	} {
		if err := os.RemoveAll(c.path(d)); err != nil {
			errs = append(errs, err)
		}
	}
	states, _ := filepath.Glob(c.path("kubelet", "*_state"))
	for _, s := range states {
		os.Remove(s)
	}
	if len(errs) > 0 {
		return fmt.Errorf("down finished with problems:\n%w", errors.Join(errs...))
	}
	c.logf("down in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// deleteWorkloads deletes every workload and pod, with a short grace
// period, and waits a bounded time for the pods to go.
func (c *Cluster) deleteWorkloads(ctx context.Context) {
	kubectl := func(args ...string) {
		full := append([]string{"--kubeconfig", c.KubeconfigPath(), "--request-timeout=5s"}, args...)
		_ = command(ctx, c.bin("kubectl"), full...).Run()
	}
	kubectl("delete", "deployments,replicasets,daemonsets,statefulsets,jobs", "--all", "--all-namespaces", "--wait=false")
	kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=2", "--timeout=30s")
	c.logf("workloads deleted")
}

// Status describes each component and the node.
type Status struct {
	Components map[string]int // name → PID; 0 when not running
	NodeReady  error          // nil when the node is Ready
}

// Running reports whether every component runs and the node is Ready.
func (s Status) Running() bool {
	for _, pid := range s.Components {
		if pid == 0 {
			return false
		}
	}
	return s.NodeReady == nil
}

// Status reads the pidfiles and asks the API server about the node.
func (c *Cluster) Status(ctx context.Context) Status {
	s := Status{Components: map[string]int{}}
	for _, d := range daemons {
		pid, _ := c.running(d)
		s.Components[d] = pid
	}
	s.NodeReady = errors.New("kube-apiserver is not running")
	if s.Components["kube-apiserver"] != 0 {
		kube, err := c.Client()
		if err == nil {
			s.NodeReady = nodeReady(ctx, kube, c.NodeName)
		} else {
			s.NodeReady = err
		}
	}
	return s
}

// Daemons lists the components in start order.
func Daemons() []string { return append([]string(nil), daemons...) }
