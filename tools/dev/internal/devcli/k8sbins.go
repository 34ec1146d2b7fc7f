package devcli

import (
	"context"
	"fmt"
	"io"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/kubebuild"
	"github.com/linkerd-go/linkerd-go/tools/testkit/kubebins"
)

func runK8sBins(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("k8s-bins", "k8s-bins [flags]\n\n"+
		"Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,\n"+
		"kube-proxy, kubectl, containerd, runc, the CNI plugins, CoreDNS, helm and crane\n"+
		"at the versions pinned in tools/testkit/kubebins/versions.go, from the Go module\n"+
		"proxy, into a cache keyed by version ($"+kubebins.EnvCacheDir+", default\n"+
		"~/.cache/linkerd-go). Installs the Debian packages they need with apt-get.\n"+
		"The first run takes about 10 minutes on 2 cores; later runs take seconds.", stderr)
	printDir := fs.Bool("print-dir", false, "only print the folder holding the binaries (fails if any is missing)")
	skipPackages := fs.Bool("skip-packages", false, "do not check or install Debian packages")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *printDir {
		dir, err := kubebins.Find()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir)
		return nil
	}
	_, err := kubebuild.Install(ctx, kubebuild.Options{SkipPackages: *skipPackages, Log: stdout})
	return err
}
