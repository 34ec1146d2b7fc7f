// Package childproc runs the child processes of the test harnesses and the
// dev tools (etcd, kube-apiserver, mesh components, the dev cluster): output
// in a log file, reaped as soon as they exit, stopped with SIGTERM then
// SIGKILL, and killed with the parent if that dies without cleaning up.
package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Process is a started child.
type Process struct {
	Name    string
	Cmd     *exec.Cmd
	LogPath string
	exited  chan struct{} // closed once the process has been reaped
	err     error         // exit status, valid after exited is closed
}

// Start starts argv with env added to this process's environment and its
// output in logPath. The child has its own process group (a Ctrl-C on the
// parent does not race an orderly stop) and gets SIGKILL if the parent
// dies first.
func Start(name, logPath string, env []string, argv ...string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, LogPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running returns an error naming the exit status once the process has
// exited, nil while it runs.
func (p *Process) Running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v", p.Name, p.err)
	default:
		return nil
	}
}

// Stop asks the process to exit and kills it after grace. It returns once
// the process is reaped; stopping a stopped process does nothing.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Tail returns the last n lines of the process's output.
func (p *Process) Tail(n int) string { return TailFile(p.LogPath, n) }

// TailFile returns the last n lines of a file, or the read error.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
