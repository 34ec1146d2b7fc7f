package bench

import (
	"strings"
	"testing"
)

func TestNginxConfig(t *testing.T) {
	conf := nginxConfig("/run/x", nginxSide{listen: "127.0.0.1", upstream: "198.19.200.30", upstreamHTTP: 10080, upstreamGRPC: 10081})
	for _, want := range []string{
		"pid /run/x/nginx.pid;",
		"worker_processes auto;",
		"access_log off;",
		"proxy_temp_path /run/x/proxy;",
		"client_body_temp_path /run/x/client_body;",
		"server 198.19.200.30:10080;",
		"server 198.19.200.30:10081;",
		"keepalive 256;",
		"listen 127.0.0.1:10080;",
		"listen 127.0.0.1:10082 http2;",
		"listen 127.0.0.1:10081 http2;",
		"proxy_http_version 1.1;",
		`proxy_set_header Connection "";`,
		"grpc_pass grpc://grpc_backend;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}
	argv := strings.Join(nginxArgv("/usr/sbin/nginx", "/run/x"), " ")
	if argv != "/usr/sbin/nginx -p /run/x -c /run/x/nginx.conf -e /run/x/error.log -g daemon off; master_process on;" {
		t.Errorf("argv %s", argv)
	}
}
