package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersionText(t *testing.T) {
	code, out, _ := run("version", "--client")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"Client version: dev", "linkerd.identity.v1.IdentityService", "linkerd.destination.v1.DestinationService", "linkerd.policy.v1.InboundPolicyService"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := run("version", "--client", "-o", "json")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	var got versionInfo
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Client != "dev" || len(got.APIServices) != 3 {
		t.Errorf("got %+v", got)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		code      int
		inStderr  string
		outputNil bool
	}{
		{args: nil, code: 2, inStderr: "Usage: linkerd <command>"},
		{args: []string{"frobnicate"}, code: 2, inStderr: `unknown command "frobnicate"`},
		{args: []string{"version", "-o", "yaml"}, code: 2, inStderr: `output format "yaml"`},
		{args: []string{"version", "--bogus"}, code: 2, inStderr: "flag provided but not defined"},
		{args: []string{"version", "extra"}, code: 2, inStderr: `unexpected argument "extra"`},
	} {
		code, _, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.inStderr) {
			t.Errorf("linkerd %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.inStderr)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := run("help")
	if code != 0 || !strings.Contains(out, "version") {
		t.Errorf("help: exit %d, output %q", code, out)
	}
	code, _, stderr := run("version", "--help")
	if code != 0 || !strings.Contains(stderr, "output format") {
		t.Errorf("version --help: exit %d, stderr %q", code, stderr)
	}
}
