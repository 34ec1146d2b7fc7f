//go:build integration

package meshtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/tools/internal/childproc"
)

// startProc starts argv with env added to the test's environment, its output
// in dir/<name>.log. It is stopped in t.Cleanup (SIGTERM, then SIGKILL after
// 10s), and killed with the test binary if that dies without cleaning up.
func startProc(t testing.TB, dir, name string, env []string, argv ...string) *childproc.Process {
	t.Helper()
	p, err := childproc.Start(name, filepath.Join(dir, name+".log"), env, argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return p
}

// run runs argv to completion and returns its combined output.
func run(argv ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// procUsage is what /proc says about one process.
type procUsage struct {
	CPU   time.Duration // user + system time so far
	HWMKB int64         // peak resident set size (VmHWM), KiB
	RSSKB int64         // current resident set size (VmRSS), KiB
}

// usage reads /proc/<pid>/stat and /proc/<pid>/status.
func usage(pid int) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return u, fmt.Errorf("short /proc/%d/stat", pid)
	}
	// utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	const clockTicks = 100 // USER_HZ on Linux
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			u.HWMKB = n
		case "VmRSS":
			u.RSSKB = n
		}
	}
	return u, nil
}
