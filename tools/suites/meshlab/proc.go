package meshlab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Run runs argv to completion and returns its combined output.
func Run(argv ...string) (string, error) {
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

// Usage is what /proc says about one process.
type Usage struct {
	CPU   time.Duration // user + system time so far
	HWMKB int64         // peak resident set size (VmHWM), KiB
	RSSKB int64         // current resident set size (VmRSS), KiB
	PPID  int           // parent process
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTicks = 100

// ReadUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	u, err = ParseStat(string(stat))
	if err != nil {
		return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	u.HWMKB, u.RSSKB = ParseStatus(string(status))
	return u, nil
}

// ParseStat reads the parent and the CPU time (utime + stime) from the
// text of /proc/<pid>/stat.
func ParseStat(s string) (Usage, error) {
	var u Usage
	// The fields after the command name, which may hold spaces and
	// parentheses, so the last ')' ends it.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return u, fmt.Errorf("short stat line")
	}
	// fields[0] is field 3 of stat(5): ppid is 4, utime 14, stime 15.
	ppid, err0 := strconv.Atoi(fields[1])
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return u, fmt.Errorf("bad stat line")
	}
	u.PPID = ppid
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return u, nil
}

// ParseStatus reads VmHWM and VmRSS (KiB) from the text of
// /proc/<pid>/status.
func ParseStatus(s string) (hwmKB, rssKB int64) {
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwmKB = n
		case "VmRSS":
			rssKB = n
		}
	}
	return hwmKB, rssKB
}

// Children returns the PIDs whose parent is pid (from /proc/*/stat).
func Children(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if u, err := ParseStat(string(b)); err == nil && u.PPID == pid {
			out = append(out, child)
		}
	}
	return out, nil
}
