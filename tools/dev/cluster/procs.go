package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A daemon's pidfile holds "<pid> <start time>": the start time (clock
// ticks since boot, from /proc/<pid>/stat) tells our process from an
// unrelated one that got the same PID later, so we never signal a stranger.

func (c *Cluster) pidfile(name string) string { return c.path("run", name+".pid") }

func (c *Cluster) logPath(name string) string { return filepath.Join(c.LogDir(), name+".log") }

// startDaemon starts a detached component with its output in logs/<name>.log,
// unless the one from its pidfile is still running.
func (c *Cluster) startDaemon(name, path string, args ...string) error {
	if pid, ok := c.running(name); ok {
		c.logf("%s already running (pid %d)", name, pid)
		return nil
	}
	if err := os.MkdirAll(c.LogDir(), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.LogDir(), name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n==== %s starting %s %s\n", time.Now().Format(time.RFC3339), path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = c.StateDir
	// containerd finds its shim on PATH.
	cmd.Env = append(os.Environ(), "PATH="+c.BinDir+":"+os.Getenv("PATH"))
	// Its own session: it outlives `cluster up` and ignores our terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we are still around (in tests Up and Down
	// run in one process); otherwise init adopts it when we exit.
	go func() { _ = cmd.Wait() }()
	start, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("%s exited at once (see %s)", name, filepath.Join(c.LogDir(), name+".log"))
	}
	if err := os.WriteFile(c.pidfile(name), fmt.Appendf(nil, "%d %d\n", pid, start), 0o644); err != nil {
		return err
	}
	c.logf("started %s (pid %d)", name, pid)
	return nil
}

// running returns the PID of the daemon from its pidfile if that process
// is still the one we started and has not exited.
func (c *Cluster) running(name string) (int, bool) {
	data, err := os.ReadFile(c.pidfile(name))
	if err != nil {
		return 0, false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscan(string(data), &pid, &start); err != nil || pid <= 0 {
		return 0, false
	}
	got, err := procStartTime(pid)
	if err != nil || got != start {
		return 0, false
	}
	return pid, true
}

// procStartTime returns the start time of a live (not zombie) process.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: parse
	// after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// stopDaemons sends SIGTERM to each named daemon, waits up to grace for all
// of them, then kills what is left, and removes their pidfiles.
func (c *Cluster) stopDaemons(grace time.Duration, names ...string) {
	var live []string
	for _, n := range names {
		if pid, ok := c.running(n); ok {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			live = append(live, n)
		}
	}
	deadline := time.Now().Add(grace)
	for len(live) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // polling for exits of processes we do not parent
		var still []string
		for _, n := range live {
			if _, ok := c.running(n); ok {
				still = append(still, n)
			}
		}
		live = still
	}
	for _, n := range live {
		if pid, ok := c.running(n); ok {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			c.logf("killed %s (pid %d) after %s", n, pid, grace)
		}
	}
	for _, n := range names {
		os.Remove(c.pidfile(n))
	}
	if len(names) > 0 {
		c.logf("stopped %s", strings.Join(names, ", "))
	}
}

// shimPIDs finds containerd-shim-runc-v2 processes serving our containerd
// (their command line names our socket): they outlive containerd.
func (c *Cluster) shimPIDs() []int {
	sock := c.path("containerd", "containerd.sock")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "containerd-shim-runc-v2" {
			continue
		}
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == sock {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
