package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// The helper roles of the binary, chosen by HelperEnv; LoadSpecEnv holds
// the load generator's LoadSpec as JSON.
const (
	HelperEnv   = "LINKERD_BENCH_HELPER" // server | load
	LoadSpecEnv = "LINKERD_BENCH_LOAD"
)

// IsHelper says whether this process was started as a helper.
func IsHelper() bool { return os.Getenv(HelperEnv) != "" }

// RunHelper runs the helper named by HelperEnv and returns the exit code.
// The load generator prints its LoadResult as JSON on stdout.
func RunHelper() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var err error
	switch name := os.Getenv(HelperEnv); name {
	case "server":
		err = ListenAndServe(ctx, fmt.Sprintf("0.0.0.0:%d", appPort), fmt.Sprintf("0.0.0.0:%d", appGRPCPort), os.Stdout)
	case "load":
		var spec LoadSpec
		if err = json.Unmarshal([]byte(os.Getenv(LoadSpecEnv)), &spec); err != nil {
			err = fmt.Errorf("%s: %w", LoadSpecEnv, err)
			break
		}
		var res LoadResult
		if res, err = Load(ctx, spec); err == nil {
			err = json.NewEncoder(os.Stdout).Encode(res)
		}
	default:
		err = fmt.Errorf("unknown helper %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench helper:", err)
		return 1
	}
	return 0
}
