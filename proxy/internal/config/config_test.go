package config

import (
	"maps"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func required() map[string]string {
	return map[string]string{
		"LINKERD2_PROXY_IDENTITY_LOCAL_NAME":    "web.default.serviceaccount.identity.linkerd.cluster.local",
		"LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS": "-----BEGIN CERTIFICATE-----",
		"LINKERD2_PROXY_IDENTITY_SVC_ADDR":      "linkerd-identity-headless.linkerd.svc.cluster.local:8080",
		"LINKERD2_PROXY_IDENTITY_SVC_NAME":      "linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local",
		"LINKERD2_PROXY_DESTINATION_SVC_ADDR":   "linkerd-dst-headless.linkerd.svc.cluster.local:8086",
		"LINKERD2_PROXY_DESTINATION_SVC_NAME":   "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
	}
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(required()))
	if err != nil {
		t.Fatal(err)
	}
	if c.InboundAddr != "0.0.0.0:4143" || c.OutboundAddrs[0] != "127.0.0.1:4140" || c.AdminAddr != "0.0.0.0:4191" {
		t.Errorf("listeners %+v", c)
	}
	if c.ShutdownGrace != 2*time.Minute || c.DetectTimeout != 10*time.Second || c.ShutdownEndpoint {
		t.Errorf("durations %+v", c)
	}
	if c.LogLevel != "info" || len(c.OpaquePorts) != 8 {
		t.Errorf("log %q opaque %v", c.LogLevel, c.OpaquePorts)
	}
	want := SideLimits{MaxInFlight: 1000, MaxConnections: 4096, HTTP2MaxConcurrentStreams: 250, HTTP2MaxRapidResetsPerSecond: 1000}
	if c.Inbound != want || c.Outbound != want {
		t.Errorf("limits %+v %+v", c.Inbound, c.Outbound)
	}
}

func TestLimits(t *testing.T) {
	m := required()
	m["LINKERD2_PROXY_INBOUND_MAX_IN_FLIGHT"] = "100000"
	m["LINKERD2_PROXY_OUTBOUND_MAX_CONNECTIONS"] = "500"
	m["LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_MAX_CONCURRENT_STREAMS"] = "100"
	m["LINKERD2_PROXY_INBOUND_SERVER_HTTP2_MAX_RAPID_RESETS_PER_SECOND"] = "5000"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.Inbound.MaxInFlight != 100000 || c.Outbound.MaxConnections != 500 || c.Outbound.HTTP2MaxConcurrentStreams != 100 || c.Outbound.MaxInFlight != 1000 {
		t.Errorf("%+v %+v", c.Inbound, c.Outbound)
	}
	if c.Inbound.HTTP2MaxRapidResetsPerSecond != 5000 || c.Outbound.HTTP2MaxRapidResetsPerSecond != 1000 {
		t.Errorf("rapid resets %+v %+v", c.Inbound, c.Outbound)
	}
	for _, bad := range []string{"0", "-3", "many", "99999999999"} {
		m := required()
		m["LINKERD2_PROXY_OUTBOUND_MAX_IN_FLIGHT"] = bad
		if _, err := FromEnv(env(m)); err == nil || !strings.Contains(err.Error(), "OUTBOUND_MAX_IN_FLIGHT") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestLinkerdStyleValues(t *testing.T) {
	m := required()
	m["LINKERD2_PROXY_LOG"] = "warn,linkerd=info,hickory=error"
	m["LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD"] = "120"
	m["LINKERD2_PROXY_DESTINATION_CONTEXT"] = `{"ns":"default","nodeName":"vm","pod":"web-1"}`
	m["LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION"] = "25,3306,5000-5010"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "warn" || c.ShutdownGrace != 2*time.Minute || len(c.OpaquePorts) != 3 {
		t.Errorf("%+v", c)
	}
}

func TestErrorsReportedTogether(t *testing.T) {
	m := map[string]string{
		"LINKERD2_PROXY_LOG":                                      "loud",
		"LINKERD2_PROXY_LOG_FORMAT":                               "xml",
		"LINKERD2_PROXY_INBOUND_LISTEN_ADDR":                      "nope",
		"LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD":                    "-1s",
		"LINKERD2_PROXY_DESTINATION_CONTEXT":                      "{",
		"LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION": "70000",
	}
	_, err := FromEnv(env(m))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"LOCAL_NAME: required", "LINKERD2_PROXY_LOG:", "LOG_FORMAT", "INBOUND_LISTEN_ADDR", "SHUTDOWN_GRACE_PERIOD", "DESTINATION_CONTEXT", "DISABLE_PROTOCOL_DETECTION"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The injector's policy variables, as it writes them.
func TestPolicyVariables(t *testing.T) {
	m := required()
	m["LINKERD2_PROXY_POLICY_SVC_ADDR"] = "linkerd-policy.linkerd.svc.cluster.local.:8090"
	m["LINKERD2_PROXY_POLICY_SVC_NAME"] = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"
	m["LINKERD2_PROXY_POLICY_WORKLOAD"] = `{"ns":"emojivoto","pod":"web-1"}`
	m["LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS"] = "198.18.0.0/15,fd00::/8"
	m["LINKERD2_PROXY_INBOUND_DEFAULT_POLICY"] = "cluster-authenticated"
	m["LINKERD2_PROXY_INBOUND_PORTS"] = "8080,9090"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.PolicyNamespace != "emojivoto" || c.PolicyPod != "web-1" || len(c.ClusterNetworks) != 2 || len(c.InboundPorts) != 2 || c.InboundPorts[1] != 9090 {
		t.Errorf("%+v", c)
	}
	for name, value := range map[string]string{
		"LINKERD2_PROXY_INBOUND_DEFAULT_POLICY":  "allow-everything",
		"LINKERD2_PROXY_POLICY_WORKLOAD":         `{"ns":"emojivoto"}`,
		"LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS": "198.18.0.0/33",
		"LINKERD2_PROXY_INBOUND_PORTS":           "8080,http",
		"LINKERD2_PROXY_POLICY_SVC_NAME":         "",
	} {
		bad := maps.Clone(m)
		bad[name] = value
		if _, err := FromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, value, err)
		}
	}
	// A cluster default needs the networks.
	bad := maps.Clone(m)
	delete(bad, "LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS")
	if _, err := FromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), "CLUSTER_NETWORKS") {
		t.Errorf("cluster default without networks: %v", err)
	}
}
