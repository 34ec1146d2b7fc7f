// Package demo deploys the demo application (internal/demo/app, image
// dev.local/demoapp:dev) on a cluster: the objects, applying them, waiting
// for them, and building the image. `dev demo` and the e2e suite use it.
//
// In a namespace annotated linkerd.io/inject: enabled:
//
//	load ──HTTP/1.1──▶ frontend (1 pod) ──gRPC──▶ backend (3 pods)
//
// plus, on demand, a Job that calls the frontend a number of times and an
// unmeshed pod (linkerd.io/inject: disabled).
package demo

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/linkerd-go/linkerd-go/api/mesh"
	"github.com/linkerd-go/linkerd-go/tools/dev/cluster"
	"github.com/linkerd-go/linkerd-go/tools/dev/demo/app"
)

// Image is the demo application's image, built here and loaded into the
// node (pods never pull it).
const Image = cluster.ImageRegistry + "/demoapp:dev"

// Names of the demo's workloads (Deployments, Services and
// ServiceAccounts share them).
const (
	Frontend = "frontend"
	Backend  = "backend"
	Load     = "load"
	// Unmeshed is the pod annotated linkerd.io/inject: disabled.
	Unmeshed = "unmeshed"
	// Port is the frontend's HTTP port and the backend's gRPC port;
	// StatsPort the load generator's report (GET /stats).
	Port      = 8080
	StatsPort = 8081
	// BackendReplicas is the backend's replica count.
	BackendReplicas = 3
)

// Deployments are the demo's Deployments.
var Deployments = []string{Backend, Frontend, Load}

// Options parameterise the demo's objects.
type Options struct {
	Namespace string
	// Rate is the load generator's requests per second (0 = 10).
	Rate float64
}

// FrontendURL is the frontend's URL inside the cluster.
func FrontendURL(ns string) string {
	return fmt.Sprintf("http://%s.%s.svc.%s:%d/", Frontend, ns, cluster.ClusterDomain, Port)
}

// Objects are the namespace (annotated for injection), the
// ServiceAccounts, Services and Deployments of the demo, in the order to
// apply them.
func Objects(o Options) []any {
	ns := o.Namespace
	rate := o.Rate
	if rate <= 0 {
		rate = 10
	}
	backendAddr := fmt.Sprintf("%s.%s.svc.%s:%d", Backend, ns, cluster.ClusterDomain, Port)
	objs := []any{&corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: ns, Annotations: map[string]string{mesh.AnnotationInject: "enabled"}},
	}}
	for _, sa := range Deployments {
		objs = append(objs, &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns},
		})
	}
	objs = append(objs,
		service(ns, Backend, "grpc"),
		service(ns, Frontend, "http"),
		deployment(ns, Backend, BackendReplicas, container("backend", []string{"--addr", ":" + strconv.Itoa(Port)},
			corev1.ContainerPort{Name: "grpc", ContainerPort: Port},
			corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: Port, Service: ptr.To(app.ServiceName)}})),
		deployment(ns, Frontend, 1, container("frontend", []string{"--addr", ":" + strconv.Itoa(Port), "--backend", backendAddr},
			corev1.ContainerPort{Name: "http", ContainerPort: Port},
			corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(Port)}})),
		deployment(ns, Load, 1, container("load", []string{"--url", FrontendURL(ns), "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--stats-addr", ":" + strconv.Itoa(StatsPort)},
			corev1.ContainerPort{Name: "stats", ContainerPort: StatsPort},
			corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(StatsPort)}})),
	)
	return objs
}

// Job is a Job in ns that calls the frontend count times and succeeds if
// every call is answered 200 (no retries: one pod, backoffLimit 0).
func Job(ns, name string, count int) *batchv1.Job {
	c := container("job", []string{"--url", FrontendURL(ns), "--count", strconv.Itoa(count)}, corev1.ContainerPort{}, corev1.ProbeHandler{})
	c.Ports, c.ReadinessProbe = nil, nil
	spec := podSpec(c)
	spec.ServiceAccountName = Load
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To[int64](300),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       spec,
			},
		},
	}
}

// UnmeshedPod is a backend pod in ns annotated linkerd.io/inject: disabled:
// the injector must leave it alone although its namespace is annotated.
func UnmeshedPod(ns string) *corev1.Pod {
	c := container("backend", []string{"--addr", ":" + strconv.Itoa(Port)},
		corev1.ContainerPort{Name: "grpc", ContainerPort: Port},
		corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: Port, Service: ptr.To(app.ServiceName)}})
	spec := podSpec(c)
	spec.ServiceAccountName = Backend
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: Unmeshed, Namespace: ns, Labels: map[string]string{"app": Unmeshed},
			Annotations: map[string]string{mesh.AnnotationInject: "disabled"}},
		Spec: spec,
	}
}

// FrontendClient is a frontend named name in ns, calling the demo's backend
// in backendNS, with its ServiceAccount (also named name): a second caller
// of the backend, from another namespace or (meshed false: annotated
// linkerd.io/inject: disabled) from outside the mesh, for policy tests.
func FrontendClient(ns, name, backendNS string, meshed bool) []any {
	backendAddr := fmt.Sprintf("%s.%s.svc.%s:%d", Backend, backendNS, cluster.ClusterDomain, Port)
	d := deployment(ns, name, 1, container("frontend", []string{"--addr", ":" + strconv.Itoa(Port), "--backend", backendAddr},
		corev1.ContainerPort{Name: "http", ContainerPort: Port},
		corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(Port)}}))
	if !meshed {
		d.Spec.Template.Annotations = map[string]string{mesh.AnnotationInject: "disabled"}
	}
	return []any{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		},
		d,
	}
}

func service(ns, name, portName string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: portName, Port: Port, TargetPort: intstr.FromString(portName)}},
		},
	}
}

func deployment(ns, name string, replicas int32, c corev1.Container) *appsv1.Deployment {
	spec := podSpec(c)
	spec.ServiceAccountName = name
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// container is the demo app in mode with args, non-root with a read-only
// root filesystem, and its port and readiness probe.
func container(mode string, args []string, port corev1.ContainerPort, probe corev1.ProbeHandler) corev1.Container {
	return corev1.Container{
		Name:            mode,
		Image:           Image,
		ImagePullPolicy: corev1.PullNever,
		Args:            append([]string{mode}, args...),
		Ports:           []corev1.ContainerPort{port},
		ReadinessProbe:  &corev1.Probe{ProbeHandler: probe, PeriodSeconds: 2, FailureThreshold: 2},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To[int64](65532),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

func podSpec(c corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		TerminationGracePeriodSeconds: ptr.To[int64](10),
		AutomountServiceAccountToken:  ptr.To(false),
	}
}
