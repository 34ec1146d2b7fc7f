package meshlab

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 1191 0 0 0 250 75 0 0 20 0 8 0 123 1000 200 18446744073709551615"
	u, err := ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if u.PPID != 17 || u.CPU != 3250*time.Millisecond {
		t.Errorf("ppid %d, cpu %v; want 17, 3.25s", u.PPID, u.CPU)
	}
	if _, err := ParseStat("1 (x) S 2 3"); err == nil {
		t.Error("short line accepted")
	}
}

func TestParseStatus(t *testing.T) {
	hwm, rss := ParseStatus("Name:\tproxy\nVmPeak:\t  900 kB\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\nThreads:\t8\n")
	if hwm != 30720 || rss != 20480 {
		t.Errorf("hwm %d, rss %d", hwm, rss)
	}
}

func TestReadUsageAndChildrenOfThisProcess(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.HWMKB <= 0 || u.RSSKB <= 0 || u.PPID != os.Getppid() {
		t.Errorf("usage of this process: %+v", u)
	}
	kids, err := Children(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, os.Getpid()) {
		t.Errorf("children of the parent %v lack this process %d", kids, os.Getpid())
	}
}

func TestCleanupRunsNewestFirstOnce(t *testing.T) {
	var c Cleanup
	var order []string
	c.Add(func() error { order = append(order, "first"); return errors.New("one") })
	c.Add(func() error {
		order = append(order, "second")
		c.Add(func() error { order = append(order, "added while running"); return nil })
		return errors.New("two")
	})
	err := c.Run()
	if got := strings.Join(order, ","); got != "second,added while running,first" {
		t.Errorf("order %s", got)
	}
	if err == nil || !strings.Contains(err.Error(), "one") || !strings.Contains(err.Error(), "two") {
		t.Errorf("errors %v", err)
	}
	if err := c.Run(); err != nil || len(order) != 3 {
		t.Errorf("second Run did something: %v %v", err, order)
	}
}

// Every policy kind maps to its real resource (plural forms are not
// regular: authorizationpolicies).
func TestPolicyResources(t *testing.T) {
	for kind, want := range map[string]string{"Server": "servers", "AuthorizationPolicy": "authorizationpolicies", "MeshTLSAuthentication": "meshtlsauthentications", "NetworkAuthentication": "networkauthentications"} {
		gvr, err := PolicyObject{Kind: kind, Name: "x"}.gvr()
		if err != nil || gvr.Resource != want || gvr.Group != "policy.linkerd.io" {
			t.Errorf("%s: %v, %v", kind, gvr, err)
		}
	}
	if _, err := (PolicyObject{Kind: "Policy", Name: "x"}).gvr(); err == nil {
		t.Error("an unknown kind was accepted")
	}
}
