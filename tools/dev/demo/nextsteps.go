package demo

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// A Step is one line of what `make demo` prints when it is done: a shell
// command exactly as the user types it, and what it shows.
type Step struct {
	Command string
	Comment string
}

// NextSteps are what `make demo` prints when it is done, for the demo in
// namespace ns of the cluster that kubeconfig reaches, from the checkout in
// root; kubectl is the pinned binary. They are typed in order in one shell
// (started anywhere), so `cd` and `export` carry over. The last one stops
// the cluster.
//
// This is the one list: `dev demo` prints it and the e2e suite runs it, as
// printed, in one shell in workspace mode, so that what the demo tells a
// user to do keeps working.
func NextSteps(root, kubeconfig, kubectl, ns string) []Step {
	return []Step{
		{Command: "export KUBECONFIG=" + shellQuote(kubeconfig)},
		{Command: "cd " + shellQuote(filepath.Join(root, "tools", "cli"))},
		{Command: "go run ./cmd/linkerd stat deploy -n " + ns, Comment: "success rate, RPS, latency per Deployment"},
		{Command: "go run ./cmd/linkerd check --proxy", Comment: "the control plane and the proxies"},
		{Command: "go run ./cmd/linkerd diagnostics proxy-metrics deploy/" + Frontend + " -n " + ns, Comment: "the raw metrics of the frontend's proxy"},
		{Command: "go run ./cmd/linkerd identity deploy/" + Backend + " -n " + ns, Comment: "the backends' mesh identities"},
		{Command: shellQuote(kubectl) + " get pods -n " + ns + " -o wide", Comment: "each pod: its app, linkerd-init and linkerd-proxy (a native sidecar)"},
		{Command: "make -C " + shellQuote(root) + " cluster-down", Comment: "stop it all and leave the machine as it was"},
	}
}

// WriteSteps prints steps indented, one a line, their comments aligned
// after them (a comment does not change what the shell runs).
func WriteSteps(w io.Writer, steps []Step) error {
	width := 0
	for _, s := range steps {
		if s.Comment != "" {
			width = max(width, len(s.Command))
		}
	}
	var b strings.Builder
	for _, s := range steps {
		if s.Comment == "" {
			fmt.Fprintf(&b, "  %s\n", s.Command)
			continue
		}
		fmt.Fprintf(&b, "  %-*s   # %s\n", width, s.Command, s.Comment)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote returns path as one shell word: unchanged when it is made of
// characters the shell takes literally, else in single quotes.
func shellQuote(path string) string {
	if path != "" && strings.Trim(path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@%,=") == "" {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
