package bench

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Protocol is what the load generator speaks.
type Protocol string

// The protocols.
const (
	HTTP1 Protocol = "http1" // HTTP/1.1 with keep-alive
	H2C   Protocol = "h2c"   // HTTP/2 prior knowledge, plaintext
	GRPC  Protocol = "grpc"  // unary gRPC over h2c
)

// Protocols lists every Protocol in report order.
var Protocols = []Protocol{HTTP1, H2C, GRPC}

// Setup is one configuration measured side by side with the others.
type Setup string

// The configurations.
const (
	Direct       Setup = "direct"           // no proxy: the floor
	Linkerd      Setup = "linkerd-go"       // our proxy pair, mesh TLS
	LinkerdAuthz Setup = "linkerd-go+authz" // the same pair, web's ports behind a Server and an AuthorizationPolicy
	Nginx        Setup = "nginx"            // an nginx pair, keep-alive upstreams
)

// Setups lists every Setup in report order.
var Setups = []Setup{Direct, Linkerd, LinkerdAuthz, Nginx}

// Config is one benchmark run.
type Config struct {
	// Out is the folder the report goes to.
	Out string
	// Setups, Protocols and Rates span the cells; every cell is measured
	// once per round, the setups of a cell back to back.
	Setups    []Setup
	Protocols []Protocol
	Rates     []int
	Rounds    int
	// Duration is the measured part of each run, Warmup what is sent
	// before it at the same rate.
	Duration time.Duration
	Warmup   time.Duration
	// RequestTimeout bounds each request.
	RequestTimeout time.Duration
	// Timeout bounds the whole run, set-up included.
	Timeout time.Duration
	// ProfileDuration is how long both proxies are CPU-profiled under
	// ProfileRate HTTP/1.1 requests per second after the rounds; 0 skips
	// the profile.
	ProfileDuration time.Duration
	ProfileRate     int
	// InstallNginx lets the run apt-get install Debian's nginx when it is
	// missing.
	InstallNginx bool
	// Command is the command line, for the report.
	Command string
}

// DefaultConfig is `make bench-proxy`'s configuration: about 9 minutes of
// measurement on a 2-core machine.
func DefaultConfig() Config {
	return Config{
		Out:             "bench/results",
		Setups:          slices.Clone(Setups),
		Protocols:       []Protocol{HTTP1, GRPC},
		Rates:           []int{100, 1000, 5000},
		Rounds:          3,
		Duration:        5 * time.Second,
		Warmup:          500 * time.Millisecond,
		RequestTimeout:  5 * time.Second,
		Timeout:         14 * time.Minute,
		ProfileDuration: 20 * time.Second,
		ProfileRate:     2000,
		InstallNginx:    true,
	}
}

// runOverhead is a generous estimate of what each run costs beyond its
// load: starting the generator, connecting, reading /proc.
const runOverhead = 1500 * time.Millisecond

// setupAllowance is what building, starting the API server, the control
// plane, the proxies and nginx may take.
const setupAllowance = 4 * time.Minute

// Runs is the number of load runs the configuration makes.
func (c Config) Runs() int { return c.Rounds * len(c.Setups) * len(c.Protocols) * len(c.Rates) }

// Estimate is how long the measurement is expected to take, set-up not
// included.
func (c Config) Estimate() time.Duration {
	est := time.Duration(c.Runs()) * (c.Duration + c.Warmup + runOverhead)
	if c.ProfileDuration > 0 {
		est += c.ProfileDuration + c.Warmup + runOverhead
	}
	return est
}

// Validate lists every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Out == "" {
		errs = append(errs, errors.New("no output folder"))
	}
	if !slices.Contains(c.Setups, Direct) {
		errs = append(errs, errors.New("the setups must include direct: added latency is measured against it"))
	}
	errs = append(errs, checkList("setup", c.Setups, Setups)...)
	if len(c.Protocols) == 0 {
		errs = append(errs, errors.New("no protocol"))
	}
	errs = append(errs, checkList("protocol", c.Protocols, Protocols)...)
	if len(c.Rates) == 0 {
		errs = append(errs, errors.New("no rate"))
	}
	for _, r := range c.Rates {
		if r < 1 || r > 50000 {
			errs = append(errs, fmt.Errorf("rate %d outside 1..50000 requests/s", r))
		}
	}
	if dup := duplicate(c.Rates); dup != 0 {
		errs = append(errs, fmt.Errorf("rate %d given twice", dup))
	}
	if c.Rounds < 1 || c.Rounds > 100 {
		errs = append(errs, fmt.Errorf("rounds %d outside 1..100", c.Rounds))
	}
	durationOK := c.Duration >= 100*time.Millisecond && c.Duration <= 10*time.Minute
	if !durationOK {
		errs = append(errs, fmt.Errorf("duration %v outside 100ms..10m", c.Duration))
	}
	if c.Warmup < 0 || c.Warmup > time.Minute {
		errs = append(errs, fmt.Errorf("warm-up %v outside 0..1m", c.Warmup))
	}
	for _, r := range c.Rates {
		if r > 0 && durationOK && Count(r, c.Duration) < 1 {
			errs = append(errs, fmt.Errorf("rate %d for %v sends no request", r, c.Duration))
		}
	}
	if c.RequestTimeout <= 0 || c.RequestTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("request timeout %v outside (0, 1m]", c.RequestTimeout))
	}
	if c.ProfileDuration < 0 || c.ProfileDuration > 5*time.Minute {
		errs = append(errs, fmt.Errorf("profile duration %v outside 0..5m", c.ProfileDuration))
	}
	if c.ProfileDuration > 0 && (c.ProfileRate < 1 || c.ProfileRate > 50000) {
		errs = append(errs, fmt.Errorf("profile rate %d outside 1..50000 requests/s", c.ProfileRate))
	}
	if c.ProfileDuration > 0 && !slices.Contains(c.Setups, Linkerd) {
		errs = append(errs, errors.New("a profile needs the linkerd-go setup"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v must be positive", c.Timeout))
	} else if len(errs) == 0 && c.Estimate()+setupAllowance > c.Timeout {
		errs = append(errs, fmt.Errorf("%d runs take about %v plus up to %v of set-up, more than the timeout %v: fewer rounds, rates or a shorter duration",
			c.Runs(), c.Estimate().Round(time.Second), setupAllowance, c.Timeout))
	}
	return errors.Join(errs...)
}

// checkList refuses values of vs not in known, and values given twice.
func checkList[T ~string](kind string, vs, known []T) []error {
	var errs []error
	for _, v := range vs {
		if !slices.Contains(known, v) {
			errs = append(errs, fmt.Errorf("unknown %s %q (want %v)", kind, v, known))
		}
	}
	if dup := duplicate(vs); dup != "" {
		errs = append(errs, fmt.Errorf("%s %q given twice", kind, dup))
	}
	return errs
}

// duplicate returns a value given twice, or the zero value.
func duplicate[T comparable](vs []T) T {
	seen := map[T]bool{}
	for _, v := range vs {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	var zero T
	return zero
}
