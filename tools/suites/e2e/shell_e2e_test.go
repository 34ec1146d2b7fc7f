//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userShell is one bash session the way a user has a terminal open: lines
// typed one after another, the working folder and exported variables
// carried from one to the next. Its environment is the test's without
// GOWORK and GOFLAGS (make test runs the suite with GOWORK=off), so the go
// command finds the checkout's go.work as it does in a fresh clone.
type userShell struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the session's output, stdout and stderr interleaved; closed when it ends
	marker string      // printed with the exit status after each typed line

	waitOnce sync.Once
	waitErr  error
}

func startUserShell(ctx context.Context, dir string) (*userShell, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOWORK=") && !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, err
	}
	s := &userShell{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), marker: "e2e-typed-line-done-" + rand.Text()}
	go func() {
		defer close(s.lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s, nil
}

// run types line and returns what it printed and its exit status, or an
// error if the session ended or the line did not finish within timeout.
func (s *userShell) run(line string, timeout time.Duration) (string, int, error) {
	// The newline before the marker puts it on a line of its own even after
	// output without one; it is not part of the line's output.
	if _, err := fmt.Fprintf(s.stdin, "%s\nprintf '\\n%s %%d\\n' \"$?\"\n", line, s.marker); err != nil {
		return "", 0, err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var out []string
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return strings.Join(out, "\n"), 0, fmt.Errorf("the shell ended (%v)", s.wait())
			}
			if rest, found := strings.CutPrefix(l, s.marker+" "); found {
				status, err := strconv.Atoi(rest)
				if len(out) > 0 && out[len(out)-1] == "" {
					out = out[:len(out)-1]
				}
				return strings.Join(out, "\n"), status, err
			}
			out = append(out, l)
		case <-deadline.C:
			return strings.Join(out, "\n"), 0, fmt.Errorf("not done after %s", timeout)
		}
	}
}

// close ends the session (end of input, as Ctrl-D) and waits for it.
func (s *userShell) close() error {
	s.stdin.Close()
	for range s.lines {
	}
	return s.wait()
}

func (s *userShell) wait() error {
	s.waitOnce.Do(func() { s.waitErr = s.cmd.Wait() })
	return s.waitErr
}

// readmeLines returns the lines of the indented code block that follows the
// comment `<!-- e2e: name …-->` in the checkout's README.md, a line ending
// in a backslash joined with the next (the shell reads them as one).
func readmeLines(root, name string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return nil, err
	}
	_, after, found := strings.Cut(string(data), "<!-- e2e: "+name+" ")
	if !found {
		return nil, fmt.Errorf("README.md has no <!-- e2e: %s --> block", name)
	}
	var lines []string
	continued := false
	for _, l := range strings.Split(after, "\n")[1:] {
		code, indented := strings.CutPrefix(l, "    ")
		if !indented {
			if strings.TrimSpace(l) == "" && len(lines) == 0 {
				continue // the blank line before the block
			}
			break
		}
		if continued {
			lines[len(lines)-1] += "\n" + code
		} else {
			lines = append(lines, code)
		}
		continued = strings.HasSuffix(code, `\`)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("README.md's <!-- e2e: %s --> is followed by no indented code block", name)
	}
	return lines, nil
}
