package childproc

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartTailStop(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("sh", filepath.Join(dir, "sh.log"), []string{"GREETING=hello"}, "/bin/sh", "-c", `echo "$GREETING"; echo ready; exec sleep 600`)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.Tail(5), "ready") {
		select {
		case <-p.Exited():
			t.Fatalf("exited early: %v", p.Running())
		case <-time.After(10 * time.Millisecond): // polling the log file
		}
	}
	if got := p.Tail(2); got != "hello\nready" {
		t.Errorf("Tail = %q", got)
	}
	if err := p.Running(); err != nil {
		t.Fatal(err)
	}
	p.Stop(5 * time.Second)
	if p.Running() == nil {
		t.Error("running after Stop")
	}
	if err := syscall.Kill(p.Cmd.Process.Pid, 0); err == nil {
		t.Error("process still exists after Stop")
	}
	p.Stop(time.Second) // again: nothing to do
}

func TestStartMissingBinary(t *testing.T) {
	if _, err := Start("nope", filepath.Join(t.TempDir(), "nope.log"), nil, "/nonexistent/binary"); err == nil {
		t.Fatal("started a missing binary")
	}
}

func TestTailFileMissing(t *testing.T) {
	if got := TailFile("/nonexistent/log", 3); !strings.Contains(got, "no such file") {
		t.Errorf("TailFile of a missing file = %q", got)
	}
}
