package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The nginx pair's ports: HTTP (HTTP/1.1, and h2c in front) and gRPC.
const (
	nginxHTTPPort = 10080
	nginxH2CPort  = 10082
	nginxGRPCPort = 10081
)

// ensureNginx returns the path of nginx, installing Debian's package
// (nginx-light, else nginx) when it is missing and install is allowed.
// Debian's policy-rc.d, when present, keeps the package from starting a
// server of its own.
func ensureNginx(ctx context.Context, install bool, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, "nginx"); isExecutable(p) {
			return p, nil
		}
	}
	if !install {
		return "", fmt.Errorf("nginx is not installed (apt-get install nginx-light), and --install-nginx=false")
	}
	logf("installing nginx: apt-get update, apt-get install -y nginx-light")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 20))
		}
		return nil
	}
	if err := apt("update"); err != nil {
		return "", err
	}
	if err := apt("install", "-y", "--no-install-recommends", "nginx-light"); err != nil {
		logf("nginx-light failed (%v); trying nginx", err)
		if err := apt("install", "-y", "--no-install-recommends", "nginx"); err != nil {
			return "", err
		}
	}
	if p := "/usr/sbin/nginx"; isExecutable(p) {
		return p, nil
	}
	return exec.LookPath("nginx")
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// nginxSide is one nginx of the pair.
type nginxSide struct {
	// listen is the address the side listens on (without port), upstream
	// the host its upstreams are on.
	listen, upstream string
	// upstreamHTTP, upstreamGRPC are the upstream ports.
	upstreamHTTP, upstreamGRPC int
}

// nginxConfig renders an nginx configuration for one side of the pair:
// a reverse proxy with keep-alive upstreams, HTTP/1.1 to the upstream for
// HTTP (h2c clients included: nginx speaks only HTTP/1.1 to HTTP
// upstreams), gRPC over HTTP/2 to the upstream with grpc_pass. Workers as
// many as cores (like the Go proxy's GOMAXPROCS), no access log, every
// path inside dir so it runs unprivileged.
func nginxConfig(dir string, side nginxSide) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Written by the data-plane benchmark (tools/suites/bench).\n")
	p("worker_processes auto;\n")
	p("pid %s;\n", filepath.Join(dir, "nginx.pid"))
	p("error_log %s warn;\n", filepath.Join(dir, "error.log"))
	p("events {\n    worker_connections 8192;\n}\n")
	p("http {\n")
	p("    access_log off;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		p("    %s_temp_path %s;\n", t, filepath.Join(dir, t))
	}
	p("    keepalive_timeout 75s;\n")
	p("    keepalive_requests 1000000;\n")
	p("    upstream http_backend {\n        server %s:%d;\n        keepalive 256;\n        keepalive_requests 1000000;\n        keepalive_timeout 75s;\n    }\n", side.upstream, side.upstreamHTTP)
	p("    upstream grpc_backend {\n        server %s:%d;\n        keepalive 256;\n        keepalive_requests 1000000;\n        keepalive_timeout 75s;\n    }\n", side.upstream, side.upstreamGRPC)
	for _, l := range []struct {
		port int
		h2   string
	}{{nginxHTTPPort, ""}, {nginxH2CPort, " http2"}} {
		p("    server {\n        listen %s:%d%s;\n", side.listen, l.port, l.h2)
		p("        location / {\n            proxy_pass http://http_backend;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }\n    }\n")
	}
	p("    server {\n        listen %s:%d http2;\n", side.listen, nginxGRPCPort)
	p("        location / {\n            grpc_pass grpc://grpc_backend;\n        }\n    }\n")
	p("}\n")
	return b.String()
}

// nginxArgv is the command line that runs nginx in the foreground with
// the configuration in dir.
func nginxArgv(bin, dir string) []string {
	return []string{bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off; master_process on;"}
}
