{{/*
Small helpers. Every template of this library takes the control-plane chart's
root context ($) or a dict holding it as "root": the values the control plane
is configured with are the top-level values (Linkerd's names), which Helm does
not hand to subcharts, so the top chart passes them explicitly.
*/}}

{{/* The identity trust domain: identityTrustDomain, else clusterDomain. Arg: root. */}}
{{- define "partials.trustDomain" -}}
{{- default .Values.clusterDomain .Values.identityTrustDomain -}}
{{- end -}}

{{/*
The mesh identity of a ServiceAccount of the control-plane namespace
(api/linkerd/identity/v1 Name): <sa>.<ns>.serviceaccount.identity.<ns>.<trust-domain>.
Args: root, sa.
*/}}
{{- define "partials.identityName" -}}
{{- $ns := .root.Release.Namespace -}}
{{- printf "%s.%s.serviceaccount.identity.%s.%s" .sa $ns $ns (include "partials.trustDomain" .root) -}}
{{- end -}}

{{/* A control-plane Service's address as proxies dial it: <name>.<ns>.svc.<domain>.:<port>. Args: root, name, port. */}}
{{- define "partials.serviceAddr" -}}
{{- printf "%s.%s.svc.%s.:%d" .name .root.Release.Namespace .root.Values.clusterDomain (int .port) -}}
{{- end -}}

{{/* An image reference. Args: root, image ({name, version} or {repository, tag}). */}}
{{- define "partials.image" -}}
{{- if .image.repository -}}
{{- printf "%s:%s" .image.repository (toString .image.tag) -}}
{{- else -}}
{{- printf "%s:%s" .image.name (toString .image.version) -}}
{{- end -}}
{{- end -}}

{{/* An image's pull policy: its own pullPolicy, else the top-level imagePullPolicy. Args: root, image. */}}
{{- define "partials.pullPolicy" -}}
{{- default .root.Values.imagePullPolicy .image.pullPolicy -}}
{{- end -}}

{{/*
Kubernetes resources from Linkerd's shape {cpu: {request, limit}, memory: {…},
ephemeral-storage: {…}}; empty values are left out. Arg: the resources map.
*/}}
{{- define "partials.resources" -}}
{{- $requests := dict -}}
{{- $limits := dict -}}
{{- range $name := list "cpu" "memory" "ephemeral-storage" -}}
{{- with (index $ $name) -}}
{{- if .request -}}{{- $_ := set $requests $name (toString .request) -}}{{- end -}}
{{- if .limit -}}{{- $_ := set $limits $name (toString .limit) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $out := dict -}}
{{- if $requests -}}{{- $_ := set $out "requests" $requests -}}{{- end -}}
{{- if $limits -}}{{- $_ := set $out "limits" $limits -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* A comma-separated port list from several lists, empty ones left out. Arg: a list of strings. */}}
{{- define "partials.joinLists" -}}
{{- $items := list -}}
{{- range . -}}{{- if . -}}{{- $items = append $items (toString .) -}}{{- end -}}{{- end -}}
{{- join "," $items -}}
{{- end -}}

{{/* SHA-256 of the trust-anchor bundle, white space around it trimmed (the injector's linkerd.io/trust-root-sha256). Arg: root. */}}
{{- define "partials.trustRootSHA256" -}}
{{- sha256sum (trim .Values.identityTrustAnchorsPEM) -}}
{{- end -}}

{{/*
Labels of a control-plane object. Args: root, component
(identity, destination, proxy-injector).
*/}}
{{- define "partials.labels" -}}
linkerd.io/control-plane-component: {{ .component }}
linkerd.io/control-plane-ns: {{ .root.Release.Namespace }}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/part-of: linkerd
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The selector labels of a component's pods (never change them: Deployment selectors are immutable). Args: root, component. */}}
{{- define "partials.selectorLabels" -}}
linkerd.io/control-plane-component: {{ .component }}
linkerd.io/control-plane-ns: {{ .root.Release.Namespace }}
{{- end -}}

{{/*
Pod anti-affinity of the HA layout: replicas on different nodes (required),
and preferably in different zones. Args: root, component.
*/}}
{{- define "partials.podAntiAffinity" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
  - labelSelector:
      matchLabels:
        {{- include "partials.selectorLabels" . | nindent 8 }}
    topologyKey: kubernetes.io/hostname
  preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      labelSelector:
        matchLabels:
          {{- include "partials.selectorLabels" . | nindent 10 }}
      topologyKey: topology.kubernetes.io/zone
{{- end -}}

{{/*
The security context of a control-plane component's container: non-root
(controllerUID), read-only root filesystem, no capabilities, no privilege
escalation, RuntimeDefault seccomp. Arg: root.
*/}}
{{- define "partials.componentSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ int .Values.controllerUID }}
{{- if ge (int .Values.controllerGID) 0 }}
runAsGroup: {{ int .Values.controllerGID }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The parts of a control-plane Deployment that do not depend on the component:
replicas, strategy, and the pod spec's scheduling fields. Args: root,
component, section (the component's values section).
*/}}
{{- define "partials.replicas" -}}
{{- if kindIs "invalid" .section.replicas -}}{{- int .root.Values.controllerReplicas -}}{{- else -}}{{- int .section.replicas -}}{{- end -}}
{{- end -}}

{{- define "partials.deployment-spec-common" -}}
replicas: {{ include "partials.replicas" . }}
revisionHistoryLimit: {{ int .root.Values.revisionHistoryLimit }}
{{- with .root.Values.deploymentStrategy }}
strategy:
  {{- toYaml . | nindent 2 }}
{{- end }}
selector:
  matchLabels:
    {{- include "partials.selectorLabels" . | nindent 4 }}
{{- end -}}

{{- define "partials.pod-scheduling" -}}
{{- $v := .root.Values -}}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.enablePodAntiAffinity }}
affinity:
  {{- include "partials.podAntiAffinity" . | nindent 2 }}
{{- end }}
securityContext:
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* A component's PodDisruptionBudget (enablePodDisruptionBudget). Args: root, component, name. */}}
{{- define "partials.pdb" -}}
{{- if .root.Values.enablePodDisruptionBudget }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "partials.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .root.Values.controller.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "partials.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

{{/*
The component's log flags: its section's logLevel/logFormat, else the
controller's. Args: root, section.
*/}}
{{- define "partials.logArgs" -}}
- --log-level={{ default .root.Values.controllerLogLevel .section.logLevel }}
- --log-format={{ default .root.Values.controllerLogFormat .section.logFormat }}
{{- end -}}
