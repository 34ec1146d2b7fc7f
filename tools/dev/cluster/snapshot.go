package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// HostSnapshot fingerprints the host state the cluster may change: mounts,
// links, addresses, routes, the nftables ruleset, the sysctls it touches,
// host folders the kubelet writes, kubepods cgroups and the cluster's
// processes. Comparing one taken before Up with one taken after Down proves
// Down left nothing behind.
//
// Other programs on the machine (tests making network namespaces, bridges
// and veths, or running etcd and kube-apiserver from the same binaries)
// change the host meanwhile, so mounts, links, addresses, routes and
// processes are limited to what is the cluster's: lines naming its state
// folder, bridge, node address, CIDRs, CNI network namespaces or the
// kubelet's folders, and processes whose binary or working folder is in
// the state folder (every daemon runs there; containerd's shims and the
// pods' processes live under it) or whose command line names it.
func (c *Cluster) HostSnapshot(ctx context.Context) map[string][]string {
	s := map[string][]string{}
	lines := func(b []byte, marks []string) []string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			if marks != nil && !slices.ContainsFunc(marks, func(m string) bool { return strings.Contains(l, m) }) {
				continue
			}
			out = append(out, l)
		}
		slices.Sort(out)
		return out
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	s["mounts"] = lines(mounts, []string{c.StateDir, "/run/netns/cni-", "/var/lib/kubelet", "kubepods"})
	for key, cmd := range map[string]struct {
		args  []string
		marks []string
	}{
		// A pod's veth is on the bridge ("master l5dgo0") or, once the
		// bridge is gone, still names its pod's CNI namespace.
		"links":  {[]string{"ip", "-o", "link", "show"}, []string{Bridge, "link-netns cni-"}},
		"addrs":  {[]string{"ip", "-o", "addr", "show"}, []string{Bridge, NodeIP}},
		"routes": {[]string{"ip", "route", "show", "table", "all"}, []string{Bridge, NodeIP, PodCIDR, PodRoute, ServiceCIDR}},
		"nft":    {[]string{"nft", "list", "ruleset"}, nil},
	} {
		out, err := command(ctx, cmd.args[0], cmd.args[1:]...).Output()
		if err != nil {
			s[key] = []string{"error: " + err.Error()}
			continue
		}
		if key == "links" {
			// Keep index, name and flags; counters and qdisc state change.
			var ls []string
			for _, l := range lines(out, cmd.marks) {
				f := strings.Fields(l)
				if len(f) >= 3 {
					ls = append(ls, strings.Join(f[:3], " "))
				}
			}
			s[key] = ls
			continue
		}
		s[key] = lines(out, cmd.marks)
	}
	for _, k := range sysctlsTouched {
		v, err := readSysctl(k)
		if err == nil {
			s["sysctls"] = append(s["sysctls"], k+"="+v)
		}
	}
	for _, d := range hostDirs {
		if _, err := os.Stat(d); err == nil {
			s["host dirs"] = append(s["host dirs"], d)
		}
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	s["cgroups"] = cg
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if exe, ok := c.clusterProcess(e.Name()); ok {
			s["processes"] = append(s["processes"], fmt.Sprintf("%s %s", e.Name(), exe))
		}
	}
	return s
}

// clusterProcess reports whether /proc/<pid> is one of the cluster's
// processes, and its binary.
func (c *Cluster) clusterProcess(pid string) (string, bool) {
	exe, err := os.Readlink("/proc/" + pid + "/exe")
	if err != nil {
		return "", false
	}
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	if under(exe, c.StateDir) {
		return exe, true
	}
	if cwd, err := os.Readlink("/proc/" + pid + "/cwd"); err == nil && under(cwd, c.StateDir) {
		return exe, true
	}
	if under(exe, filepath.Dir(c.BinDir)) {
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), c.StateDir) {
			return exe, true
		}
	}
	return "", false
}

// DiffSnapshots lists what differs between two snapshots, one line per
// added (+) or removed (-) entry.
func DiffSnapshots(before, after map[string][]string) []string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var diff []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, l := range after[k] {
			if !slices.Contains(before[k], l) {
				diff = append(diff, fmt.Sprintf("%s: + %s", k, l))
			}
		}
		for _, l := range before[k] {
			if !slices.Contains(after[k], l) {
				diff = append(diff, fmt.Sprintf("%s: - %s", k, l))
			}
		}
	}
	return diff
}
