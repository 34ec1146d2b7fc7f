package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func testCluster(t *testing.T) *Cluster {
	t.Helper()
	return &Cluster{StateDir: t.TempDir(), BinDir: "/opt/bins", NodeName: "node1", Log: os.Stderr}
}

func TestConfigsRender(t *testing.T) {
	c := testCluster(t)
	for _, h := range []hostFacts{{cgroupV2: false, capSysResource: false}, {cgroupV2: true, capSysResource: true}} {
		t.Run(fmt.Sprintf("%+v", h), func(t *testing.T) {
			if err := c.writeConfigs(c.values(h)); err != nil {
				t.Fatal(err)
			}
			// The CNI config is JSON, the others YAML; each must parse.
			cni, err := os.ReadFile(c.path("cni", "net.d", "10-"+CNINetwork+".conflist"))
			if err != nil {
				t.Fatal(err)
			}
			var conf struct {
				Plugins []struct {
					Type, Bridge string
					IPAM         struct {
						Routes []struct{ Dst string }
					}
				}
			}
			if err := json.Unmarshal(cni, &conf); err != nil {
				t.Fatalf("CNI config: %v\n%s", err, cni)
			}
			if conf.Plugins[0].Bridge != Bridge || len(conf.Plugins[0].IPAM.Routes) != 1 || conf.Plugins[0].IPAM.Routes[0].Dst != PodRoute {
				t.Errorf("CNI bridge config: %+v", conf.Plugins[0])
			}
			var kubelet map[string]any
			data, _ := os.ReadFile(c.path("kubelet", "config.yaml"))
			if err := yaml.Unmarshal(data, &kubelet); err != nil {
				t.Fatalf("kubelet config: %v", err)
			}
			if kubelet["failCgroupV1"] != false {
				t.Errorf("failCgroupV1 = %v: the kubelet would refuse a cgroup v1 host", kubelet["failCgroupV1"])
			}
			wantOOM := float64(0)
			if h.capSysResource {
				wantOOM = -999
			}
			if kubelet["oomScoreAdj"] != wantOOM {
				t.Errorf("oomScoreAdj = %v, want %v", kubelet["oomScoreAdj"], wantOOM)
			}
			toml, _ := os.ReadFile(c.path("containerd", "config.toml"))
			if want := fmt.Sprintf("restrict_oom_score_adj = %v", !h.capSysResource); !strings.Contains(string(toml), want) {
				t.Errorf("containerd config lacks %q", want)
			}
			for _, f := range []string{"kube-proxy.yaml", "manifests/coredns.yaml"} {
				data, _ := os.ReadFile(c.path(f))
				for _, doc := range strings.Split(string(data), "\n---\n") {
					var m map[string]any
					if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
						t.Errorf("%s: %v", f, err)
					}
				}
			}
		})
	}
}

func TestWriteConfigsKeepsUnchangedFiles(t *testing.T) {
	c := testCluster(t)
	v := c.values(hostFacts{})
	if err := c.writeConfigs(v); err != nil {
		t.Fatal(err)
	}
	p := c.path("kube-proxy.yaml")
	// Mark the file: an unchanged config must not be rewritten, because
	// kube-proxy exits when its config file changes.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.writeConfigs(v); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Error("unchanged kube-proxy config was rewritten")
	}
}

func TestRunningChecksStartTime(t *testing.T) {
	c := testCluster(t)
	if err := os.MkdirAll(c.path("run"), 0o755); err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	start, err := procStartTime(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		content string
		want    bool
	}{
		{fmt.Sprintf("%d %d\n", self, start), true},
		{fmt.Sprintf("%d %d\n", self, start+1), false}, // PID reused by another process
		{"garbage", false},
		{"0 0", false},
		{"-1 5", false},
	} {
		if err := os.WriteFile(c.pidfile("x"), []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, got := c.running("x"); got != tc.want {
			t.Errorf("pidfile %q: running = %v, want %v", tc.content, got, tc.want)
		}
	}
	os.Remove(c.pidfile("x"))
	if _, ok := c.running("x"); ok {
		t.Error("running without a pidfile")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/x\011y\134z`:  "/x\ty\\z",
		`/trailing\04`:  `/trailing\04`,
		`/not\999octal`: `/not\999octal`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiffSnapshots(t *testing.T) {
	before := map[string][]string{"links": {"1: lo:", "2: eth0:"}, "nft": {"table ip filter"}}
	after := map[string][]string{"links": {"1: lo:", "2: eth0:", "9: l5dgo0:"}, "nft": nil}
	got := DiffSnapshots(before, after)
	want := []string{"links: + 9: l5dgo0:", "nft: - table ip filter"}
	if !slices.Equal(got, want) {
		t.Errorf("diff = %q, want %q", got, want)
	}
	if d := DiffSnapshots(before, before); len(d) != 0 {
		t.Errorf("diff of equal snapshots = %q", d)
	}
}

func TestFindDevModuleDir(t *testing.T) {
	dir, err := findDevModule()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "pause", "main.go")); err != nil {
		t.Errorf("tools dir %s has no cmd/pause: %v", dir, err)
	}
}

func TestFirstServiceIP(t *testing.T) {
	if got := firstServiceIP(); got != "198.19.0.1" {
		t.Errorf("firstServiceIP = %s", got)
	}
}
