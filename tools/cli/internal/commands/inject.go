package commands

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/linkerd-go/linkerd-go/tools/cli/internal/inject"
)

const injectUsage = `inject [flags] FILE|FOLDER|- ...

Adds the annotation linkerd.io/inject: enabled to the pod templates of the
workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet,
ReplicationController, Job, CronJob), to Pods and to Namespaces in the
manifests, and prints them on stdout; the injector adds the proxy when the
pods are created:

    linkerd inject deploy.yaml | kubectl apply -f -
    kubectl get deploy -n app -o yaml | linkerd inject - | kubectl apply -f -

Reads files, folders (their *.yaml, *.yml and *.json files, recursively) or
stdin (-); multi-document YAML, JSON and List kinds. Everything but the
annotation is kept (comments may move). What was done to each object is
printed on stderr. Pods with hostNetwork and objects annotated
linkerd.io/inject: disabled are left alone.

Flags:`

const uninjectUsage = `uninject [flags] FILE|FOLDER|- ...

Removes the annotation linkerd.io/inject from the objects that inject
edits, and prints the manifests on stdout (see inject).

Flags:`

func runInject(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return runTransform("inject", injectUsage, inject.Inject, args, stdout, stderr)
}

func runUninject(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return runTransform("uninject", uninjectUsage, inject.Uninject, args, stdout, stderr)
}

// stdin is what "-" reads; tests replace it.
var stdin io.Reader = os.Stdin

func runTransform(name, usage string, mode inject.Mode, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, usage, stderr)
	quiet := fs.Bool("quiet", false, "do not print the summary on stderr")
	inputs, err := parseArgs(fs, args, 1, -1)
	if err != nil {
		return err
	}
	files, err := expandInputs(inputs)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	var entries []inject.Entry
	for _, f := range files {
		var r io.Reader
		if f == "-" {
			r = stdin
		} else {
			data, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			r = bytes.NewReader(data)
		}
		var doc bytes.Buffer
		es, err := inject.Transform(r, &doc, mode)
		if err != nil {
			return fmt.Errorf("%s: %w", displayName(f), err)
		}
		if doc.Len() > 0 {
			if out.Len() > 0 {
				out.WriteString("---\n")
			}
			out.Write(doc.Bytes())
		}
		entries = append(entries, es...)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return err
	}
	if !*quiet {
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.String() + "\n")
		}
		if len(entries) == 0 {
			b.WriteString("no objects found\n")
		}
		_, err = io.WriteString(stderr, b.String())
	}
	return err
}

func displayName(f string) string {
	if f == "-" {
		return "stdin"
	}
	return f
}

// expandInputs turns folders into their manifest files (sorted, recursive).
func expandInputs(inputs []string) ([]string, error) {
	var files []string
	for _, in := range inputs {
		if in == "-" {
			files = append(files, in)
			continue
		}
		info, err := os.Stat(in)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, in)
			continue
		}
		var found []string
		err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					found = append(found, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}
