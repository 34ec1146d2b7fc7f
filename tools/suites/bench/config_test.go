package bench

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValidAndFitsInFifteenMinutes(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if total := cfg.Estimate() + setupAllowance; total >= 15*time.Minute || cfg.Timeout >= 15*time.Minute {
		t.Errorf("default run estimated at %v with a %v bound; it must stay under 15 minutes", total, cfg.Timeout)
	}
	if cfg.Runs() != 3*4*2*3 { // rounds × setups × protocols × rates
		t.Errorf("Runs = %d", cfg.Runs())
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no out", func(c *Config) { c.Out = "" }, []string{"no output folder"}},
		{"no direct", func(c *Config) { c.Setups = []Setup{Linkerd, Nginx} }, []string{"must include direct"}},
		{"unknown setup", func(c *Config) { c.Setups = []Setup{Direct, "envoy"} }, []string{`unknown setup "envoy"`, "a profile needs the linkerd-go setup"}},
		{"twice", func(c *Config) { c.Setups = []Setup{Direct, Direct, Linkerd} }, []string{`setup "direct" given twice`}},
		{"protocols", func(c *Config) { c.Protocols = []Protocol{"http3", GRPC, GRPC} }, []string{`unknown protocol "http3"`, `protocol "grpc" given twice`}},
		{"no protocol", func(c *Config) { c.Protocols = nil }, []string{"no protocol"}},
		{"rates", func(c *Config) { c.Rates = []int{0, 100, 100, 60000} }, []string{"rate 0 outside", "rate 60000 outside", "rate 100 given twice"}},
		{"no rate", func(c *Config) { c.Rates = nil }, []string{"no rate"}},
		{"rounds", func(c *Config) { c.Rounds = 0 }, []string{"rounds 0 outside"}},
		{"duration", func(c *Config) { c.Duration = time.Millisecond }, []string{"duration 1ms outside"}},
		{"rate too low for the duration", func(c *Config) { c.Rates = []int{1}; c.Duration = 500 * time.Millisecond }, []string{"rate 1 for 500ms sends no request"}},
		{"warm-up", func(c *Config) { c.Warmup = -time.Second }, []string{"warm-up -1s outside"}},
		{"request timeout", func(c *Config) { c.RequestTimeout = 0 }, []string{"request timeout 0s outside"}},
		{"profile", func(c *Config) { c.ProfileDuration = time.Second; c.ProfileRate = 0 }, []string{"profile rate 0 outside"}},
		{"timeout", func(c *Config) { c.Timeout = 0 }, []string{"timeout 0s must be positive"}},
		{"too long", func(c *Config) { c.Rounds = 20 }, []string{"more than the timeout"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if got, want := strings.Count(err.Error(), "\n")+1, len(c.want); got != want {
				t.Errorf("%d problems reported, want %d: %v", got, want, err)
			}
		})
	}
}

func TestProfileOffNeedsNoLinkerd(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Setups = []Setup{Direct, Nginx}
	cfg.ProfileDuration = 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
