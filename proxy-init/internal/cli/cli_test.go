package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"

	"github.com/linkerd-go/linkerd-go/proxy-init/internal/plan"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSimulatePrintsThePlan(t *testing.T) {
	// --netns is never opened when simulating.
	code, out, stderr := run("--simulate", "--netns", "/nonexistent")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	p, err := plan.Build(plan.Default())
	if err != nil {
		t.Fatal(err)
	}
	if out != p.String() {
		t.Errorf("stdout:\n%s\nwant the default plan:\n%s", out, p)
	}
	if !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("stderr %q does not say that nothing was changed", stderr)
	}
}

func TestFlags(t *testing.T) {
	ports := func(s string) []mesh.PortRange {
		rs, err := mesh.ParsePortRanges(s)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	for _, tc := range []struct {
		args []string
		edit func(*plan.Config)
	}{
		{nil, func(*plan.Config) {}},
		{
			[]string{"--incoming-proxy-port", "5143", "--outgoing-proxy-port=5140", "--proxy-uid", "1000", "--proxy-gid", "1001"},
			func(c *plan.Config) {
				c.IncomingProxyPort, c.OutgoingProxyPort, c.ProxyUID, c.ProxyGID = 5143, 5140, 1000, 1001
			},
		},
		{
			// The first use of a list flag replaces its default; later ones add.
			[]string{"--inbound-ports-to-ignore", "4190,4191", "--inbound-ports-to-ignore", " 8000-8100 ,25"},
			func(c *plan.Config) { c.InboundPortsToIgnore = ports("4190,4191,8000-8100,25") },
		},
		{
			[]string{"--inbound-ports-to-ignore", ""},
			func(c *plan.Config) { c.InboundPortsToIgnore = nil },
		},
		{
			[]string{"--outbound-ports-to-ignore", "443", "--ports-to-redirect", "80,8080-8090"},
			func(c *plan.Config) {
				c.OutboundPortsToIgnore, c.PortsToRedirect = ports("443"), ports("80,8080-8090")
			},
		},
		{
			[]string{"--subnets-to-ignore", "10.0.0.0/8, fd00::/8", "--subnets-to-ignore", "198.18.0.0/15", "--ipv6=false"},
			func(c *plan.Config) {
				c.SubnetsToIgnore = []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("198.18.0.0/15"),
				}
				c.IPv6 = false
			},
		},
	} {
		o, err := parseArgs(tc.args, io.Discard)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		want := plan.Default()
		tc.edit(&want)
		if !reflect.DeepEqual(o.config, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.args, o.config, want)
		}
	}
}

// TestBadInput checks that each wrong command line is refused with exit code
// 2 and a message that says what is wrong, before anything is touched.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--incoming-proxy-port", "0"}, `invalid value "0" for flag -incoming-proxy-port: "0" is not a TCP port (1-65535)`},
		{[]string{"--outgoing-proxy-port", "70000"}, `"70000" is not a TCP port (1-65535)`},
		{[]string{"--outgoing-proxy-port", "http"}, `"http" is not a TCP port`},
		{[]string{"--incoming-proxy-port", "4140"}, "incoming and outgoing proxy ports are both 4140"},
		{[]string{"--inbound-ports-to-ignore", "0"}, `item "0": port 0 is out of range 1-65535`},
		{[]string{"--outbound-ports-to-ignore", "443,70000"}, `item "70000": port 70000 is out of range 1-65535`},
		{[]string{"--ports-to-redirect", "9000-8000"}, `item "9000-8000": range is reversed (9000 > 8000)`},
		{[]string{"--inbound-ports-to-ignore", "80,,443"}, "empty item"},
		{[]string{"--inbound-ports-to-ignore", "4190", "--inbound-ports-to-ignore", "x"}, `"x" is not a port number`},
		{[]string{"--subnets-to-ignore", "10.0.0.0/33"}, `"10.0.0.0/33" is not a network in CIDR notation`},
		{[]string{"--subnets-to-ignore", "10.0.0.0"}, `"10.0.0.0" is not a network in CIDR notation`},
		{[]string{"--subnets-to-ignore", "fe80::/64%eth0"}, "is not a network in CIDR notation"},
		{[]string{"--subnets-to-ignore", "10.0.0.0/8,"}, "malformed subnet list: empty item"},
		{[]string{"--subnets-to-ignore", "banana"}, `"banana" is not a network`},
		{[]string{"--proxy-uid", "-1"}, "neither a proxy uid nor a proxy gid is set"},
		{[]string{"--proxy-uid", "4294967296"}, "proxy uid 4294967296 is out of range"},
		{[]string{"--proxy-gid", "-5"}, "proxy gid -5 is out of range"},
		{[]string{"--proxy-uid", "root"}, `invalid value "root" for flag -proxy-uid`},
		{[]string{"--log-level", "loud"}, `--log-level "loud" is not debug, info, warn or error`},
		{[]string{"--log-format", "xml"}, `--log-format "xml" is not plain or json`},
		{[]string{"--firewall-bin-path", "iptables"}, "flag provided but not defined: -firewall-bin-path"},
		{[]string{"--simulate", "now"}, `unexpected argument "now"`},
	} {
		code, out, stderr := run(append(tc.args, "--simulate")...)
		if code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
			t.Errorf("proxy-init %q: exit %d, stdout %q, stderr %q; want exit 2, no plan, and %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

func TestApplyFailureExitsNonZero(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-namespace")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("--netns", file)
	if code != 1 || !strings.Contains(stderr, "is not a network namespace") {
		t.Errorf("exit %d, stderr %q; want exit 1 saying the path is not a network namespace", code, stderr)
	}
}

func TestJSONLogs(t *testing.T) {
	code, _, stderr := run("--simulate", "--log-format", "json", "--log-level", "debug")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, line := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["msg"] == nil || entry["level"] == nil {
			t.Errorf("log line %q is not a JSON entry: %v", line, err)
		}
	}
}

func TestLogLevel(t *testing.T) {
	if _, _, stderr := run("--simulate", "--log-level", "error"); stderr != "" {
		t.Errorf("--log-level error still logs %q", stderr)
	}
}

func TestHelp(t *testing.T) {
	code, out, stderr := run("--help")
	if code != 0 || out != "" {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
	for _, flag := range []string{"-incoming-proxy-port", "-inbound-ports-to-ignore", "-subnets-to-ignore", "-simulate", "-netns", "-log-format"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("usage does not mention %s", flag)
		}
	}
	if !strings.Contains(stderr, "(default 4190,4191)") {
		t.Errorf("usage does not show the default inbound ports to ignore:\n%s", stderr)
	}
}
