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
// host folders the kubelet writes, kubepods cgroups and processes running
// the cluster's binaries. Comparing one taken before Up with one taken
// after Down proves Down left nothing behind.
func (c *Cluster) HostSnapshot(ctx context.Context) map[string][]string {
	s := map[string][]string{}
	lines := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		slices.Sort(out)
		return out
	}
	mounts, _ := os.ReadFile("/proc/self/mounts")
	s["mounts"] = lines(mounts)
	for key, args := range map[string][]string{
		"links":  {"ip", "-o", "link", "show"},
		"addrs":  {"ip", "-o", "addr", "show"},
		"routes": {"ip", "route", "show", "table", "all"},
		"nft":    {"nft", "list", "ruleset"},
	} {
		out, err := command(ctx, args[0], args[1:]...).Output()
		if err != nil {
			s[key] = []string{"error: " + err.Error()}
			continue
		}
		if key == "links" {
			// Keep index, name and flags; counters and qdisc state change.
			var ls []string
			for _, l := range lines(out) {
				f := strings.Fields(l)
				if len(f) >= 3 {
					ls = append(ls, strings.Join(f[:3], " "))
				}
			}
			s[key] = ls
			continue
		}
		s[key] = lines(out)
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
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, c.StateDir+"/") || strings.HasPrefix(exe, filepath.Dir(c.BinDir)+"/") {
			s["processes"] = append(s["processes"], fmt.Sprintf("%s %s", e.Name(), exe))
		}
	}
	return s
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
