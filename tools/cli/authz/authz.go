// Package authz runs `linkerd authz`: for each port of a workload's pods,
// the inbound policy the proxies enforce — the Server (or the default
// policy), its routes and the authorizations of each. It asks destination
// itself, over the policy API (linkerd.policy.v1 WatchPort, the first
// answer), so what it prints is what the proxies receive, not a second
// reading of the policy objects. The connection goes through a port-forward
// to a Ready destination pod, with TLS 1.3 checked against the mesh's trust
// anchors and destination's mesh identity.
package authz

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	policyv1 "github.com/linkerd-go/linkerd-go/api/linkerd/policy/v1"
	"github.com/linkerd-go/linkerd-go/api/mesh"
)

// PolicyPort is destination's policy API port.
const PolicyPort = 8090

// Config says where the control plane is.
type Config struct {
	RESTConfig *rest.Config
	Kube       kubernetes.Interface
	// ControlPlaneNamespace is where destination runs ("" = linkerd).
	ControlPlaneNamespace string
	// Timeout bounds each WatchPort answer (0 = 10s).
	Timeout time.Duration
}

// Row is one route of one port's policy.
type Row struct {
	Pod  string `json:"pod"`
	Port uint16 `json:"port"`
	// Server is "kind/name": "Server/web-http", or "default/all-unauthenticated".
	Server   string `json:"server"`
	Protocol string `json:"protocol"`
	// Route is the route's "kind/name"; Authorizations its own and the
	// Server's, each "kind/name" (none: nobody may use the route).
	Route          string   `json:"route"`
	Authorizations []string `json:"authorizations"`
}

// Client asks destination for policies.
type Client struct {
	conn *grpc.ClientConn
	stop func()
	api  policyv1.InboundPolicyServiceClient
	cfg  Config
}

// Connect port-forwards to a Ready destination pod and opens the policy
// API over mesh TLS. Close releases both.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ControlPlaneNamespace == "" {
		cfg.ControlPlaneNamespace = "linkerd"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ns := cfg.ControlPlaneNamespace
	pod, err := readyDestination(ctx, cfg.Kube, ns)
	if err != nil {
		return nil, err
	}
	anchors, err := trustAnchors(ctx, cfg.Kube, ns)
	if err != nil {
		return nil, err
	}
	name := policyName(pod)
	local, stop, err := forward(cfg, pod)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", ns, pod.Name, PolicyPort, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: anchors, ServerName: name, NextProtos: []string{"h2"}}
	conn, err := grpc.NewClient("passthrough:///127.0.0.1:"+strconv.Itoa(int(local)), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		stop()
		return nil, err
	}
	return &Client{conn: conn, stop: stop, api: policyv1.NewInboundPolicyServiceClient(conn), cfg: cfg}, nil
}

// Close closes the connection and the port-forward.
func (c *Client) Close() {
	c.conn.Close()
	c.stop()
}

// Port returns the current policy of port on pod.
func (c *Client) Port(ctx context.Context, pod corev1.Pod, port uint16) (*policyv1.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	st, err := c.api.WatchPort(ctx, &policyv1.WatchPortRequest{
		Workload: &policyv1.Workload{Kind: &policyv1.Workload_Pod{Pod: &policyv1.Workload_PodRef{Namespace: pod.Namespace, Name: pod.Name}}},
		Port:     uint32(port),
	})
	if err != nil {
		return nil, err
	}
	resp, err := st.Recv()
	if err != nil {
		return nil, err
	}
	return resp.GetServer(), nil
}

// Query returns the rows of every TCP container port of pods (the proxy's
// own ports left out), in pod and port order.
func (c *Client) Query(ctx context.Context, pods []corev1.Pod) ([]Row, error) {
	var rows []Row
	for _, pod := range pods {
		for _, port := range Ports(pod) {
			srv, err := c.Port(ctx, pod, port)
			if err != nil {
				return nil, fmt.Errorf("policy of %s/%s port %d: %w", pod.Namespace, pod.Name, port, err)
			}
			rows = append(rows, Rows(pod.Name, port, srv)...)
		}
	}
	return rows, nil
}

// Ports returns the TCP ports of pod's containers, the proxy's excluded,
// sorted.
func Ports(pod corev1.Pod) []uint16 {
	var out []uint16
	for _, ct := range pod.Spec.Containers {
		if ct.Name == mesh.ProxyContainerName {
			continue
		}
		for _, p := range ct.Ports {
			if (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) && p.ContainerPort > 0 && p.ContainerPort < 65536 && !slices.Contains(out, uint16(p.ContainerPort)) {
				out = append(out, uint16(p.ContainerPort))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Rows flattens one port's policy: a row per route, with the Server's
// authorizations and the route's.
func Rows(pod string, port uint16, s *policyv1.Server) []Row {
	server := kindName(s.GetLabels())
	protocol := protocolName(s.GetProtocol())
	var serverAuthz []string
	for _, a := range s.GetAuthorizations() {
		serverAuthz = append(serverAuthz, kindName(a.GetLabels()))
	}
	if len(s.GetHttpRoutes()) == 0 {
		return []Row{{Pod: pod, Port: port, Server: server, Protocol: protocol, Route: "*", Authorizations: orNone(serverAuthz)}}
	}
	var rows []Row
	for _, r := range s.GetHttpRoutes() {
		authz := slices.Clone(serverAuthz)
		for _, a := range r.GetAuthorizations() {
			authz = append(authz, kindName(a.GetLabels()))
		}
		rows = append(rows, Row{Pod: pod, Port: port, Server: server, Protocol: protocol, Route: kindName(r.GetLabels()), Authorizations: orNone(authz)})
	}
	return rows
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{}
	}
	sort.Strings(s)
	return slices.Compact(s)
}

func kindName(labels map[string]string) string {
	return labels["kind"] + "/" + labels["name"]
}

func protocolName(p *policyv1.ProxyProtocol) string {
	switch p.GetKind().(type) {
	case *policyv1.ProxyProtocol_Opaque:
		return "opaque"
	case *policyv1.ProxyProtocol_Tls:
		return "TLS"
	case *policyv1.ProxyProtocol_Http1:
		return "HTTP/1"
	case *policyv1.ProxyProtocol_Http2:
		return "HTTP/2"
	case *policyv1.ProxyProtocol_Grpc:
		return "gRPC"
	}
	return "detect"
}

// WriteTable prints rows as Linkerd's `authz` does, with the pod and port
// first: one line per route.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tPORT\tSERVER\tPROTOCOL\tROUTE\tAUTHORIZATIONS")
	for _, r := range rows {
		authz := strings.Join(r.Authorizations, ",")
		if authz == "" {
			authz = "(none: denied)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Pod, r.Port, r.Server, r.Protocol, r.Route, authz)
	}
	return tw.Flush()
}

// WriteJSON prints rows as a JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

func readyDestination(ctx context.Context, kube kubernetes.Interface, ns string) (corev1.Pod, error) {
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: mesh.LabelControlPlaneComp + "=destination"})
	if err != nil {
		return corev1.Pod{}, err
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return p, nil
			}
		}
	}
	return corev1.Pod{}, fmt.Errorf("no Ready destination pod in namespace %s: the policy service is not running (see linkerd check)", ns)
}

func trustAnchors(ctx context.Context, kube kubernetes.Interface, ns string) (*x509.CertPool, error) {
	cm, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, mesh.TrustRootsConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cm.Data[mesh.TrustRootsKey])) {
		return nil, fmt.Errorf("trust anchors: ConfigMap %s/%s has no certificate in %s", ns, mesh.TrustRootsConfigMap, mesh.TrustRootsKey)
	}
	return pool, nil
}

// policyName is the policy service's mesh identity, as the injector gave
// it to destination's own proxy; else the default trust domain's.
func policyName(pod corev1.Pod) string {
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name != mesh.ProxyContainerName {
			continue
		}
		for _, e := range c.Env {
			if e.Name == "LINKERD2_PROXY_POLICY_SVC_NAME" && e.Value != "" {
				return e.Value
			}
		}
	}
	sa := pod.Spec.ServiceAccountName
	return fmt.Sprintf("%s.%s.serviceaccount.identity.%s.cluster.local", sa, pod.Namespace, pod.Namespace)
}

// forward port-forwards a local port on 127.0.0.1 to pod's PolicyPort.
func forward(cfg Config, pod corev1.Pod) (uint16, func(), error) {
	transport, upgrader, err := spdy.RoundTripperFor(cfg.RESTConfig)
	if err != nil {
		return 0, nil, err
	}
	url := cfg.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(PolicyPort)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		return 0, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = errors.New(strings.TrimSpace(errOut.String()))
		}
		return 0, nil, err
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return 0, nil, fmt.Errorf("no local port: %v", err)
	}
	return ports[0].Local, func() { close(stop); <-done }, nil
}
