package demo

import (
	"strings"
	"testing"
)

// TestNextStepsPrintAsTyped: what dev demo prints is, line by line, the
// commands the e2e suite runs, and the comments line up after them.
func TestNextStepsPrintAsTyped(t *testing.T) {
	steps := NextSteps("/src/linkerd-go", "/cache/cluster/kubeconfig", "/cache/bin/kubectl", "demo")
	var b strings.Builder
	if err := WriteSteps(&b, steps); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(steps) {
		t.Fatalf("%d lines for %d steps:\n%s", len(lines), len(steps), b.String())
	}
	column := -1
	for i, line := range lines {
		s := steps[i]
		if strings.Contains(s.Command, "\n") {
			t.Errorf("step %d spans lines: %q", i, s.Command)
		}
		typed, comment, hasComment := strings.Cut(strings.TrimPrefix(line, "  "), "   # ")
		if strings.TrimRight(typed, " ") != s.Command || comment != s.Comment || hasComment != (s.Comment != "") {
			t.Errorf("line %q prints step %+v", line, s)
		}
		if !hasComment {
			continue
		}
		if c := strings.Index(line, "   # "); column == -1 {
			column = c
		} else if c != column {
			t.Errorf("comment of %q at column %d, others at %d", line, c, column)
		}
	}
	if got := steps[len(steps)-1].Command; got != "make -C /src/linkerd-go cluster-down" {
		t.Errorf("last step %q, want the cluster stopped", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/root/.cache/linkerd-go/cluster/kubeconfig": "/root/.cache/linkerd-go/cluster/kubeconfig",
		"/home/me/my checkout":                       "'/home/me/my checkout'",
		"/tmp/it's":                                  `'/tmp/it'\''s'`,
		"/tmp/$HOME":                                 "'/tmp/$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
