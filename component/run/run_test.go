package run_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/linkerd-go/linkerd-go/component/run"
)

type config struct{ fail string }

type component struct {
	err     error
	started chan struct{}
}

func (c component) Run(ctx context.Context) error {
	close(c.started)
	if c.err != nil {
		return c.err
	}
	<-ctx.Done()
	return nil
}

// program returns a Program whose steps fail as cfg.fail says, parsing a
// single flag -fail=STEP, and logging into log.
func program(log *bytes.Buffer, started chan struct{}) run.Program[config] {
	return run.Program[config]{
		Name:    "demo",
		Version: "v1.2.3",
		Config: func(args []string, stderr io.Writer) (config, error) {
			fs := flag.NewFlagSet("demo", flag.ContinueOnError)
			fs.SetOutput(stderr)
			var c config
			fs.StringVar(&c.fail, "fail", "", "step to fail")
			return c, fs.Parse(args)
		},
		Logger: func(c config, _ io.Writer) (logr.Logger, error) {
			if c.fail == "logger" {
				return logr.Logger{}, errors.New("bad log level")
			}
			return funcr.New(func(prefix, args string) { log.WriteString(args + "\n") }, funcr.Options{}), nil
		},
		New: func(c config, _ logr.Logger) (run.Component, error) {
			switch c.fail {
			case "new":
				return nil, errors.New("port in use")
			case "new-usage":
				return nil, run.Usage(errors.New("issuer does not chain to the anchors"))
			case "run":
				return component{err: errors.New("listener closed"), started: started}, nil
			}
			return component{started: started}, nil
		},
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr or the log
	}{
		{[]string{"-h"}, 0, "step to fail"},
		{[]string{"-nope"}, 2, "demo: flag provided but not defined: -nope"},
		{[]string{"-fail=logger"}, 2, "demo: bad log level"},
		{[]string{"-fail=new"}, 1, "port in use"},
		{[]string{"-fail=new-usage"}, 2, "issuer does not chain"},
		{[]string{"-fail=run"}, 1, "listener closed"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr, log bytes.Buffer
			code := program(&log, make(chan struct{})).Run(context.Background(), tc.args, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr: %s; log: %s", code, tc.code, stderr.String(), log.String())
			}
			if !strings.Contains(stderr.String()+log.String(), tc.want) {
				t.Errorf("output lacks %q; stderr: %s; log: %s", tc.want, stderr.String(), log.String())
			}
		})
	}
}

// A component that runs until its context ends exits 0, having logged its
// version at start and its stop.
func TestCleanStop(t *testing.T) {
	var stderr, log bytes.Buffer
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- program(&log, started).Run(ctx, nil, &stderr) }()
	<-started
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit code %d, want 0; log: %s", code, log.String())
	}
	for _, want := range []string{`"msg"="starting" "version"="v1.2.3"`, `"msg"="stopped"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
}

func TestUsage(t *testing.T) {
	if run.Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
	base := errors.New("x")
	err := run.Usage(base)
	if !run.IsUsage(err) || !errors.Is(err, base) || run.IsUsage(base) {
		t.Errorf("Usage(%v): IsUsage %v, Is base %v", base, run.IsUsage(err), errors.Is(err, base))
	}
}
