//go:build integration

package meshtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/suites/meshlab"
)

// runApp runs a helper app in ns to completion (as root, or as the proxy's
// uid, whose traffic proxy-init does not redirect) and decodes its JSON
// output into out.
func runApp(t testing.TB, ns string, asProxyUID bool, env []string, out any) {
	t.Helper()
	argv := []string{"netns", "exec", ns}
	if asProxyUID {
		argv = append(argv, meshlab.AsProxyUID()...)
	}
	argv = append(argv, bins.app)
	cmd := exec.Command("ip", argv...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		t.Fatalf("app %v: %v\nstdout: %s\nstderr: %s", env, err, stdout.String(), stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("app output: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
	}
}

// TestMeshedTraffic: a client app calls web's Service by its cluster IP
// with plain HTTP/1.1 and no proxy settings. proxy-init's rules hand the
// connection to the client's proxy, which resolves the cluster IP through
// destination, balances the requests over web's three pods and talks mesh
// TLS to the server's proxy, which hands them to the web app with the
// client's identity.
func TestMeshedTraffic(t *testing.T) {
	m := startMesh(t)
	clientID := meshlab.IdentityName("client", meshlab.AppNS)
	webID := meshlab.IdentityName("web", meshlab.AppNS)

	var res clientResult
	runApp(t, m.ClientNS, false, []string{
		helperEnv + "=client",
		urlEnv + "=" + fmt.Sprintf("http://%s:%d/", meshlab.WebClusterIP, meshlab.WebPort),
		argEnv + "=" + strconv.Itoa(len(meshlab.WebHosts)),
	}, &res)
	t.Logf("client: %+v", res)
	if len(res.Errors) > 0 || res.Statuses[200] != res.Requests || res.BodySizes[responseSize] != res.Requests {
		t.Errorf("not every request got 200 with %d bytes: %+v", responseSize, res)
	}
	for _, h := range meshlab.WebHosts {
		if res.ServedBy[m.Net.IP(h)] == 0 {
			t.Errorf("replica %s served no request: %v", m.Net.IP(h), res.ServedBy)
		}
	}
	if len(res.ServedBy) != len(meshlab.WebHosts) {
		t.Errorf("served by %v, want exactly the %d replicas", res.ServedBy, len(meshlab.WebHosts))
	}
	if len(res.ClientIDs) != 1 || res.ClientIDs[clientID] != res.Requests {
		t.Errorf("l5d-client-id seen by the app: %v, want %q on every request", res.ClientIDs, clientID)
	}

	client, err := scrape(fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.ClientHost), mesh.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	server, err := scrape(fmt.Sprintf("http://%s:%d/metrics", m.Net.IP(meshlab.WebHosts[0]), mesh.AdminPort))
	if err != nil {
		t.Fatal(err)
	}
	n := float64(res.Requests)
	out := map[string]string{"direction": "outbound", "tls": "true", "server_id": webID, "dst_namespace": meshlab.AppNS, "dst_service": "web"}
	in := map[string]string{"direction": "inbound", "tls": "true", "client_id": clientID}
	for _, c := range []struct {
		side    string
		samples []sample
		name    string
		labels  map[string]string
	}{
		{"client proxy", client, "request_total", out},
		{"client proxy", client, "response_total", with(out, "status_code", "200", "classification", "success")},
		{"server proxy", server, "request_total", in},
		{"server proxy", server, "response_total", with(in, "status_code", "200", "classification", "success")},
	} {
		if got, _ := sum(c.samples, c.name, c.labels); got != n {
			t.Errorf("%s: %s%v adds up to %v, want %v; all series:\n%s", c.side, c.name, c.labels, got, n, named(c.samples, c.name))
		}
	}
	// The client's proxy saw each of web's pods.
	for i := range meshlab.WebHosts {
		pod := fmt.Sprintf("web-%d", i)
		if got, _ := sum(client, "request_total", with(out, "dst_pod", pod)); got == 0 {
			t.Errorf("client proxy: no request_total for dst_pod=%s:\n%s", pod, named(client, "request_total"))
		}
	}
	// Nothing went out or came in without mesh TLS.
	for _, c := range []struct {
		side    string
		samples []sample
		labels  map[string]string
	}{
		{"client proxy", client, map[string]string{"direction": "outbound"}},
		{"server proxy", server, map[string]string{"direction": "inbound"}},
	} {
		total, _ := sum(c.samples, "request_total", c.labels)
		if total != n {
			t.Errorf("%s: %v requests in all, want %v (all with mesh TLS):\n%s", c.side, total, n, named(c.samples, "request_total"))
		}
	}
}

// with returns a copy of m with the key-value pairs kv added.
func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
