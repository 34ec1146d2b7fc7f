// Package bench is the data-plane benchmark behind `make bench-proxy`
// (`go run ./cmd/bench proxy`): on the mesh of meshlab (two
// pod-like network namespaces with real proxy-init rules, proxies with
// certificates from a real identity and endpoints from a real destination)
// it measures, interleaved in repeated rounds, the latency of constant-rate
// open-loop load with no proxy (direct), through our proxy pair with mesh
// TLS, and through an nginx pair with keep-alive upstreams, plus each
// proxy's CPU and memory, and writes a Markdown report, a JSON file and a
// PNG plot.
//
// The test server and the load generator are this same binary re-executed
// inside a network namespace with HelperEnv set (see RunHelper).
package bench
