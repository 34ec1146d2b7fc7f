package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/linkerd-go/linkerd-go/tools/cli/subcmd"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// Main runs the bench program's command line and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcmd.Program{
		Name:        "bench",
		Description: "bench runs the benchmarks of linkerd-go.",
		Commands: map[string]subcmd.Command{
			"proxy":  {Summary: "data plane: direct vs linkerd-go vs nginx, report into --out (root)", Run: runProxy},
			"render": {Summary: "rewrite the Markdown and the plot of --out from its JSON report", Run: runRender},
		},
	}.Run(ctx, args, stdout, stderr)
}

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := DefaultConfig()
	fs := subcmd.NewFlagSet("bench", "proxy", "proxy [flags]", stderr)
	fs.StringVar(&cfg.Out, "out", cfg.Out, "folder of the report ("+ReportMarkdown+", "+ReportJSON+", "+ReportPlot+", profiles); replaced each run")
	setups := listFlag(fs, "setups", joinAny(cfg.Setups), "setups, comma-separated: direct, linkerd-go, linkerd-go+authz, nginx (direct is required)")
	protocols := listFlag(fs, "protocols", joinAny(cfg.Protocols), "protocols, comma-separated: http1, h2c, grpc")
	rates := listFlag(fs, "rates", joinAny(cfg.Rates), "requests per second, comma-separated")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds; the report shows medians over them")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured load of each run")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before each run, same rate")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "timeout of each request")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound of the whole run, set-up included")
	fs.DurationVar(&cfg.ProfileDuration, "profile-duration", cfg.ProfileDuration, "CPU-profile both proxies this long after the rounds (0: no profile)")
	fs.IntVar(&cfg.ProfileRate, "profile-rate", cfg.ProfileRate, "HTTP/1.1 requests per second while profiling")
	fs.BoolVar(&cfg.InstallNginx, "install-nginx", cfg.InstallNginx, "apt-get install Debian's nginx when it is missing")
	if err := subcmd.ParseFlags(fs, args, 0); err != nil {
		return err
	}
	cfg.Setups = nil
	for _, s := range *setups {
		cfg.Setups = append(cfg.Setups, Setup(s))
	}
	cfg.Protocols = nil
	for _, p := range *protocols {
		cfg.Protocols = append(cfg.Protocols, Protocol(p))
	}
	cfg.Rates = nil
	for _, s := range *rates {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%w: --rates: %q is not a number", subcmd.ErrUsage, s)
		}
		cfg.Rates = append(cfg.Rates, n)
	}
	cfg.Command = commandLine(args)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", subcmd.ErrUsage, err)
	}
	rep, err := Run(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done in %.0f s\n", rep.WallSeconds)
	return nil
}

func runRender(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := subcmd.NewFlagSet("bench", "render", "render [flags]", stderr)
	out := fs.String("out", DefaultConfig().Out, "folder holding "+ReportJSON+"; "+ReportMarkdown+" and "+ReportPlot+" are rewritten")
	if err := subcmd.ParseFlags(fs, args, 0); err != nil {
		return err
	}
	r, err := ReadReport(filepath.Join(*out, ReportJSON))
	if err != nil {
		return err
	}
	r.Finalize()
	if err := r.WriteAll(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rewrote %s, %s and %s in %s\n", ReportMarkdown, ReportJSON, ReportPlot, *out)
	return nil
}

// commandLine is the command for the report, with the checkout's path
// left out so the committed report does not depend on where it ran.
func commandLine(args []string) string {
	s := "go run ./cmd/bench proxy " + strings.Join(args, " ")
	if root, err := meshlab.CheckoutRoot(); err == nil {
		s = strings.ReplaceAll(s, root+"/", "")
	}
	return "cd tools/suites && GOWORK=off " + strings.TrimSpace(s)
}

type flagSet interface {
	Func(name, usage string, fn func(string) error)
}

// listFlag is a comma-separated flag with a default.
func listFlag(fs flagSet, name, def, usage string) *[]string {
	v := strings.Split(def, ",")
	fs.Func(name, usage+" (default "+def+")", func(s string) error {
		v = nil
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				v = append(v, f)
			}
		}
		return nil
	})
	return &v
}

func joinAny[T any](vs []T) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	return strings.Join(out, ",")
}
