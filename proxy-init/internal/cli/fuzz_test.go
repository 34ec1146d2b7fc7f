package cli

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

// FuzzParseArgs feeds the list flags arbitrary values. Nothing may panic; a
// value is either refused with an error, or gives a plan that its canonical
// form (merged, sorted port ranges; subnets as parsed) gives again. The seed
// corpus is in testdata/fuzz/FuzzParseArgs.
func FuzzParseArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, inbound, outbound, redirect, subnets string) {
		o, err := parseArgs([]string{
			"--inbound-ports-to-ignore", inbound,
			"--outbound-ports-to-ignore", outbound,
			"--ports-to-redirect", redirect,
			"--subnets-to-ignore", subnets,
		}, io.Discard)
		if err != nil {
			return
		}
		p, err := plan.Build(o.config)
		if err != nil {
			if !errors.Is(err, plan.ErrInvalidConfig) {
				t.Fatalf("Build failed without ErrInvalidConfig: %v", err)
			}
			return
		}
		canonical := func(rs []mesh.PortRange) string { return mesh.FormatPortRanges(mesh.NormalizePortRanges(rs)) }
		again, err := parseArgs([]string{
			"--inbound-ports-to-ignore", canonical(o.config.InboundPortsToIgnore),
			"--outbound-ports-to-ignore", canonical(o.config.OutboundPortsToIgnore),
			"--ports-to-redirect", canonical(o.config.PortsToRedirect),
			"--subnets-to-ignore", formatSubnets(o.config.SubnetsToIgnore),
		}, io.Discard)
		if err != nil {
			t.Fatalf("the canonical form of accepted lists is refused: %v", err)
		}
		p2, err := plan.Build(again.config)
		if err != nil {
			t.Fatalf("the canonical form of accepted lists gives no plan: %v", err)
		}
		if p.String() != p2.String() {
			t.Fatalf("the canonical form gives another plan:\n%s\n%s", p, p2)
		}
		for _, c := range p.Chains {
			for _, r := range c.Rules {
				if s := r.String(); strings.ContainsAny(s, "\n\r\x00") {
					t.Fatalf("rule %q spans lines", s)
				}
			}
		}
	})
}
