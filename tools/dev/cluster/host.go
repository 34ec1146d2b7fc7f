package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// hostFacts are what the configuration depends on.
type hostFacts struct {
	cgroupV2       bool
	capSysResource bool
}

// preflight checks what the cluster cannot run without and reads the facts
// the configuration adapts to.
func preflight() (hostFacts, error) {
	var h hostFacts
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "must run as root (kubelet, containerd and the CNI bridge change the host's network and mounts)")
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		problems = append(problems, "no /sys/fs/cgroup: "+err.Error())
	} else {
		h.cgroupV2 = st.Type == unix.CGROUP2_SUPER_MAGIC
	}
	capBnd, err := readCapBnd()
	if err != nil {
		problems = append(problems, err.Error())
	}
	h.capSysResource = capBnd&(1<<unix.CAP_SYS_RESOURCE) != 0
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		problems = append(problems, "bridge netfilter (br_netfilter) is not available: Service traffic between pods would bypass kube-proxy")
	}
	for _, cmd := range []string{"ip", "iptables", "nft"} {
		if _, err := exec.LookPath(cmd); err != nil {
			problems = append(problems, cmd+" not found: run `make k8s-bins`, which installs the Debian packages")
		}
	}
	if len(problems) > 0 {
		return h, errors.New("host not ready:\n  " + strings.Join(problems, "\n  "))
	}
	return h, nil
}

func readCapBnd() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapBnd in /proc/self/status")
}

// sysctlsTouched are the kernel settings we set or the kubelet and
// kube-proxy rewrite on their own; saved before the first start, restored
// by Down.
var sysctlsTouched = []string{
	"net.ipv4.ip_forward",
	"net.bridge.bridge-nf-call-iptables",
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
	"net.netfilter.nf_conntrack_tcp_timeout_established",
	"net.netfilter.nf_conntrack_tcp_timeout_close_wait",
}

// hostDirs are folders the kubelet and libcni create at fixed paths whatever
// they are told; Down removes those that did not exist before.
var hostDirs = []string{
	"/var/log/containers",
	"/var/lib/kubelet",
	"/var/lib/kubelet/device-plugins",
	"/var/lib/cni",
	"/var/lib/cni/results",
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(key, value string) error {
	return os.WriteFile(sysctlPath(key), []byte(value+"\n"), 0o644)
}

// recordHost saves, once per up/down cycle, everything Down needs to put
// the host back: record files that already exist are from the first up of
// this cycle and are kept.
func (c *Cluster) recordHost(ctx context.Context) error {
	run := c.path("run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return err
	}
	if err := writeOnce(filepath.Join(run, "sysctl.saved"), func() ([]byte, error) {
		var b []byte
		for _, k := range sysctlsTouched {
			v, err := readSysctl(k)
			if err != nil {
				continue // not present on this kernel; nothing to restore
			}
			b = fmt.Appendf(b, "%s=%s\n", k, v)
		}
		return b, nil
	}); err != nil {
		return err
	}
	if err := writeOnce(filepath.Join(run, "nft-tables.before"), func() ([]byte, error) {
		return command(ctx, "nft", "list", "tables").Output()
	}); err != nil {
		return err
	}
	return writeOnce(filepath.Join(run, "created-dirs"), func() ([]byte, error) {
		var b []byte
		for _, d := range hostDirs {
			if _, err := os.Stat(d); os.IsNotExist(err) {
				b = fmt.Appendf(b, "%s\n", d)
			}
		}
		return b, nil
	})
}

func writeOnce(path string, content func() ([]byte, error)) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := content()
	if err != nil {
		return fmt.Errorf("recording %s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// prepareHost makes the host changes the cluster needs.
func (c *Cluster) prepareHost(ctx context.Context) error {
	for k, v := range map[string]string{"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"} {
		if err := writeSysctl(k, v); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	// The API server and the node need an address pods can route to (they
	// only route 198.18.0.0/15) that is not a pod's: one on lo.
	out, err := command(ctx, "ip", "-o", "addr", "show", "dev", "lo").Output()
	if err != nil {
		return fmt.Errorf("ip addr show dev lo: %w", err)
	}
	if !strings.Contains(string(out), " "+NodeIP+"/32 ") {
		if err := os.WriteFile(c.path("run", "lo-addr-added"), nil, 0o644); err != nil {
			return err
		}
		if out, err := command(ctx, "ip", "addr", "add", NodeIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr add %s/32 dev lo: %w: %s", NodeIP, err, out)
		}
	}
	return nil
}

// restoreHost undoes prepareHost and what the components did to the host.
// Each step is independent and tolerant, so Down works from any state.
func (c *Cluster) restoreHost(ctx context.Context) []error {
	var errs []error
	run := c.path("run")
	// kube-proxy removes its own KUBE-* chains.
	if _, err := os.Stat(c.bin("kube-proxy")); err == nil {
		_ = command(ctx, c.bin("kube-proxy"), "--cleanup", "--v=0").Run()
	}
	// Chains the kubelet and kube-proxy create outside kube-proxy's cleanup
	// (KUBE-FIREWALL, the canaries, the iptables hint).
	for _, ipt := range []string{"iptables", "ip6tables"} {
		for _, args := range [][]string{
			{"-t", "filter", "-D", "INPUT", "-j", "KUBE-FIREWALL"},
			{"-t", "filter", "-D", "OUTPUT", "-j", "KUBE-FIREWALL"},
			{"-t", "filter", "-F", "KUBE-FIREWALL"},
			{"-t", "filter", "-X", "KUBE-FIREWALL"},
			{"-t", "mangle", "-X", "KUBE-KUBELET-CANARY"},
			{"-t", "filter", "-X", "KUBE-KUBELET-CANARY"},
			{"-t", "nat", "-X", "KUBE-KUBELET-CANARY"},
			{"-t", "mangle", "-X", "KUBE-IPTABLES-HINT"},
		} {
			_ = command(ctx, ipt, args...).Run() // absent chains are fine
		}
	}
	// Tables that iptables-nft created during our run and that are now empty.
	if before, err := os.ReadFile(filepath.Join(run, "nft-tables.before")); err == nil {
		known := strings.Split(strings.TrimSpace(string(before)), "\n")
		now, _ := command(ctx, "nft", "list", "tables").Output()
		for _, line := range strings.Split(strings.TrimSpace(string(now)), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || slices.Contains(known, line) {
				continue
			}
			if empty, _ := nftTableEmpty(ctx, f[1], f[2]); empty {
				if out, err := command(ctx, "nft", "delete", "table", f[1], f[2]).CombinedOutput(); err != nil {
					errs = append(errs, fmt.Errorf("nft delete table %s %s: %v: %s", f[1], f[2], err, out))
				}
			}
		}
		os.Remove(filepath.Join(run, "nft-tables.before"))
	}
	if out, err := command(ctx, "ip", "link", "del", Bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", Bridge, err, out))
	}
	if _, err := os.Stat(filepath.Join(run, "lo-addr-added")); err == nil {
		if out, err := command(ctx, "ip", "addr", "del", NodeIP+"/32", "dev", "lo").CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot assign") {
			errs = append(errs, fmt.Errorf("ip addr del %s/32 dev lo: %v: %s", NodeIP, err, out))
		}
		os.Remove(filepath.Join(run, "lo-addr-added"))
	}
	errs = append(errs, removeKubepodsCgroups()...)
	errs = append(errs, c.cleanHostPaths(run)...)
	if saved, err := os.ReadFile(filepath.Join(run, "sysctl.saved")); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(saved)), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			if cur, err := readSysctl(k); err == nil && cur != v {
				if err := writeSysctl(k, v); err != nil {
					errs = append(errs, fmt.Errorf("restoring %s=%s: %w", k, v, err))
				}
			}
		}
		os.Remove(filepath.Join(run, "sysctl.saved"))
	}
	return errs
}

// nftTableEmpty reports whether a table has no chains with rules and no
// sets: what iptables-nft leaves behind after kube-proxy's cleanup.
func nftTableEmpty(ctx context.Context, family, name string) (bool, error) {
	out, err := command(ctx, "nft", "list", "table", family, name).Output()
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "", l == "}", strings.HasPrefix(l, "#"), strings.HasPrefix(l, "table "),
			strings.HasPrefix(l, "chain "), strings.HasPrefix(l, "type "), strings.HasPrefix(l, "policy "):
		default:
			return false, nil
		}
	}
	return true, nil
}

// removeKubepodsCgroups removes the kubepods trees the kubelet and runc made
// in every cgroup hierarchy (cgroupfs driver), deepest first.
func removeKubepodsCgroups() []error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		roots = append(roots, "/sys/fs/cgroup/kubepods") // cgroup v2 layout
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			// A cgroup folder is removed with rmdir even though it lists files.
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
			}
		}
	}
	return errs
}

// cleanHostPaths removes what the kubelet and libcni wrote at hard-coded
// paths, and the folders that did not exist before the first up.
func (c *Cluster) cleanHostPaths(run string) []error {
	var errs []error
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, c.StateDir+"/") {
			os.Remove(l)
		}
	}
	os.Remove("/var/lib/kubelet/device-plugins/kubelet.sock")
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, r := range results {
		base := filepath.Base(r)
		if strings.HasPrefix(base, CNINetwork+"-") || strings.HasPrefix(base, "cni-loopback-") {
			os.Remove(r)
		}
	}
	created, err := os.ReadFile(filepath.Join(run, "created-dirs"))
	if err == nil {
		dirs := strings.Fields(string(created))
		slices.Reverse(dirs) // children before parents
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("removing %s (created by the kubelet): %w", d, err))
			}
		}
		os.Remove(filepath.Join(run, "created-dirs"))
	}
	return errs
}

// unmountUnder unmounts every mount point under dir, deepest first
// (pod volumes, container root filesystems, shm, network namespaces).
func unmountUnder(dir string) (int, []error) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return 0, []error{err}
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		p := unescapeMount(f[1])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	n := 0
	for _, p := range points {
		if err := unix.Unmount(p, 0); err != nil {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
				continue
			}
		}
		n++
	}
	return n, errs
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// command is exec.CommandContext with a bound on waiting for output after
// the process ends.
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
