//go:build integration

package meshtest

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// proxyPID returns the PID of a proxy started by meshlab (ip netns exec and
// setpriv exec the proxy in place, so it is the child's own PID).
func proxyPID(t *testing.T, m *meshlab.Mesh) int {
	t.Helper()
	pid := m.ServerProxy.Cmd.Process.Pid
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "proxy" {
		t.Fatalf("PID %d is not the proxy (%q, %v)", pid, comm, err)
	}
	return pid
}

// openFiles counts the descriptors a process holds.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// exchange connects to addr, runs send, and reads until the proxy closes
// the connection. The deadline only turns a hang into a failure.
func exchange(t *testing.T, addr string, send func(net.Conn) error) (answer string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_ = send(c)
	b, err := io.ReadAll(c)
	return string(b), err == nil || !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHostileConnectionsToInboundPort: connections made straight to the
// proxy's inbound port (4143) of a pod from outside it, through the pod's
// real redirection rules — a TLS ClientHello without the pod's name, and
// plain HTTP — are closed without being forwarded: the proxy neither loops
// them back into itself nor grows its descriptors, and keeps serving. Then
// the proxy's file limit is lowered below what its open connections need:
// the accepts that fail (EMFILE) are counted and retried, the proxy stays
// up, and serves again once the connections are gone.
func TestHostileConnectionsToInboundPort(t *testing.T) {
	m := startMesh(t)
	pid := proxyPID(t, m)
	before := openFiles(t, pid)
	adminURL := fmt.Sprintf("http://%s:%d", m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort)

	// Every address of the pod: the first is the one the kernel redirects
	// to, the others are redirected to it.
	for _, h := range meshlab.WebHosts {
		addr := net.JoinHostPort(m.Net.IP(h), fmt.Sprint(mesh.InboundPort))
		for name, send := range map[string]func(net.Conn) error{
			"TLS without SNI": func(c net.Conn) error {
				return tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake()
			},
			"plaintext HTTP": func(c net.Conn) error {
				_, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
				return err
			},
		} {
			for range 20 {
				answer, closed := exchange(t, addr, send)
				if !closed {
					t.Fatalf("%s to %s: the proxy held the connection open", name, addr)
				}
				if name == "plaintext HTTP" && answer != "" {
					t.Fatalf("%s to %s: the proxy answered %q", name, addr, answer)
				}
			}
		}
	}
	if err := m.ServerProxy.Running(); err != nil {
		t.Fatalf("after the connections to 4143: %v\n%s", err, m.ServerProxy.Tail(30))
	}
	if after := openFiles(t, pid); after > before+20 {
		t.Errorf("the proxy holds %d descriptors, %d before the connections to 4143", after, before)
	}
	samples, err := scrape(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.name == "tcp_open_total" && strings.HasSuffix(s.labels["target_addr"], fmt.Sprintf(":%d", mesh.InboundPort)) {
			t.Errorf("a connection was forwarded to the inbound port: %v", s)
		}
	}
	webURL := fmt.Sprintf("http://%s:%d/", meshlab.WebClusterIP, meshlab.WebPort)
	meshedGET(t, m, webURL)

	// Out of descriptors: give the proxy a file limit a little above what
	// it holds, then open more connections than that to the application's
	// port (each is redirected to the proxy, which keeps it open as an idle
	// HTTP connection).
	held := openFiles(t, pid)
	soft, hard := fileLimit(t, pid)
	setSoftFileLimit(t, pid, uint64(held+16), hard)
	appAddr := net.JoinHostPort(m.Net.IP(meshlab.WebHosts[0]), fmt.Sprint(meshlab.AppPort))
	var conns []net.Conn
	for range 64 {
		c, err := net.DialTimeout("tcp", appAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The proxy takes the queued connections as descriptors come back;
	// wait until it has counted failed accepts.
	waitFor(t, 30*time.Second, func() (bool, string) {
		s, err := scrape(adminURL + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		n, _ := sum(s, "accept_errors_total", map[string]string{"direction": "inbound", "errno": "EMFILE"})
		return n > 0, fmt.Sprintf("accept_errors_total{errno=EMFILE} = %v", n)
	})
	for _, c := range conns {
		c.Close()
	}
	setSoftFileLimit(t, pid, soft, hard)
	if err := m.ServerProxy.Running(); err != nil {
		t.Fatalf("after running out of descriptors: %v\n%s", err, m.ServerProxy.Tail(30))
	}
	meshedGET(t, m, webURL)
}

// fileLimit reads a process's RLIMIT_NOFILE from /proc/PID/limits.
func fileLimit(t *testing.T, pid int) (soft, hard uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			if _, err := fmt.Sscan(strings.TrimPrefix(line, "Max open files"), &soft, &hard); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return soft, hard
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", pid)
	return 0, 0
}

// setSoftFileLimit sets a process's soft RLIMIT_NOFILE. It runs prlimit as
// the proxy's uid: changing the limits of a process of another uid takes
// CAP_SYS_RESOURCE, which this machine's root may lack; a process of the
// same uid may move its soft limit up to the hard one and back.
func setSoftFileLimit(t *testing.T, pid int, soft, hard uint64) {
	t.Helper()
	argv := append(meshlab.AsProxyUID(), "prlimit", "--pid", fmt.Sprint(pid), fmt.Sprintf("--nofile=%d:%d", soft, hard))
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
}

// meshedGET has the client app GET url through both proxies and requires
// every answer to be 200.
func meshedGET(t *testing.T, m *meshlab.Mesh, url string) {
	t.Helper()
	var res clientResult
	runApp(t, m.ClientNS, false, []string{helperEnv + "=client", urlEnv + "=" + url, argEnv + "=1"}, &res)
	if len(res.Errors) > 0 || res.Requests == 0 || res.Statuses[200] != res.Requests {
		t.Errorf("GET %s through the mesh: %+v", url, res)
	}
}

// waitFor polls cond every 50ms until it holds, failing the test with its
// last word after timeout (a bound against a hang, not a measurement).
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %s", timeout, last)
		}
		<-tick.C
	}
}
