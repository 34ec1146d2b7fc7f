package devcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{nil, exitUsage, "Usage: dev <command>"},
		{[]string{"--help"}, exitOK, ""},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"cluster"}, exitUsage, "missing subcommand"},
		{[]string{"cluster", "load"}, exitUsage, `"load" takes 1 argument(s)`},
		{[]string{"cluster", "up", "extra"}, exitUsage, `"up" takes 0 argument(s)`},
		{[]string{"k8s-bins", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"k8s-bins", "--help"}, exitOK, "cache keyed by version"},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.inStderr) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, stderr.String(), tc.inStderr)
		}
	}
}
