package kubebins

import (
	"strings"
	"testing"
)

func TestFindReportsMissingBinaries(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	_, err := Find()
	if err == nil || !strings.Contains(err.Error(), "make k8s-bins") || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("Find on an empty cache: %v", err)
	}
}

func TestVersionsArePinned(t *testing.T) {
	for _, c := range Components() {
		if !strings.HasPrefix(c.Version, "v") || strings.Contains(c.Version, "latest") {
			t.Errorf("%s version %q is not a pinned semver", c.Name, c.Version)
		}
	}
}
