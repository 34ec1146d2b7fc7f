package devcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestImagesFlags(t *testing.T) {
	out := t.TempDir()
	for _, tc := range []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"images", "--help"}, exitOK, "org.opencontainers.image.{title,version,source,revision}"},
		{[]string{"images", "push", "--help"}, exitOK, "credential helpers"},
		{[]string{"images"}, exitUsage, "--out is required"},
		{[]string{"images", "--out", out, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"images", "--out", out, "--platforms", "windows/amd64"}, exitUsage, `--platforms: platform "windows/amd64": want linux/<arch>`},
		{[]string{"images", "--out", out, "--platforms", "linux/amd64,linux/mips99"}, exitUsage, `architecture "mips99"`},
		{[]string{"images", "--out", out, "--components", "proxy,web"}, exitUsage, `--components: unknown component "web"`},
		{[]string{"images", "--out", out, "--tag", "a:b"}, exitUsage, `tag "a:b"`},
		{[]string{"images", "--out", out, "--repository-prefix", "linkerd"}, exitUsage, "must start with a registry host"},
		{[]string{"images", "--out", out, "--tag", "", "--components", ""}, exitUsage, "no component given"},
		{[]string{"images", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"images", "push"}, exitUsage, "--out is required"},
		{[]string{"images", "push", "--out", out, "--tag", "a b"}, exitUsage, `tag "a b"`},
		{[]string{"images", "push", "--out", out, "--components", "nope"}, exitUsage, `unknown component "nope"`},
		{[]string{"images", "push", "--out", out}, 1, "build the images first"},
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
