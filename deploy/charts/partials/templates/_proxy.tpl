{{/*
The linkerd-proxy container of a meshed control-plane pod, with the
environment the injector gives application pods (injector/README.md, "Proxy
environment"), from the same values.

With proxy.nativeSidecar (the default) the caller puts it in initContainers
after linkerd-init, and it carries restartPolicy: Always; otherwise it is the
pod's first container.

It has no startup probe, unlike injected application pods: a startup probe
holds the pod's next containers until the proxy holds a certificate, and the
identity pod's proxy gets its certificate from the identity container of the
same pod, which would then never start. The control-plane components never
send their own traffic through their proxy (their ports bypass it, see
partials.proxy-init's callers), so none of them needs to wait for it. The
readiness probe still keeps the pod out of Ready until the proxy has its
certificate.

Args:
  root           the chart's root context
  sa             the pod's ServiceAccount (its identity name)
  inboundPorts   the ports the pod's containers declare, comma-separated
  identityAddr   the identity service address; default the headless Service.
                 The identity pod passes 127.0.0.1:8080: its proxy gets its
                 certificate from the identity container beside it (the
                 headless Service lists the pod only once it is Ready, which
                 needs that certificate). An address, not "localhost": the
                 proxy's resolver would ask cluster DNS for that name.
*/}}
{{- define "partials.proxy" -}}
{{- $v := .root.Values -}}
{{- $root := .root -}}
{{- $identityAddr := default (include "partials.serviceAddr" (dict "root" $root "name" "linkerd-identity-headless" "port" 8080)) .identityAddr -}}
name: linkerd-proxy
image: {{ include "partials.image" (dict "root" $root "image" $v.proxy.image) }}
imagePullPolicy: {{ include "partials.pullPolicy" (dict "root" $root "image" $v.proxy.image) }}
{{- if $v.proxy.nativeSidecar }}
restartPolicy: Always
{{- end }}
env:
- name: _pod_name
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: _pod_ns
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: _pod_nodeName
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: LINKERD2_PROXY_LOG
  value: {{ $v.proxy.logLevel | quote }}
- name: LINKERD2_PROXY_LOG_FORMAT
  value: {{ $v.proxy.logFormat | quote }}
- name: LINKERD2_PROXY_DESTINATION_SVC_ADDR
  value: {{ include "partials.serviceAddr" (dict "root" $root "name" "linkerd-dst-headless" "port" 8086) }}
- name: LINKERD2_PROXY_DESTINATION_SVC_NAME
  value: {{ include "partials.identityName" (dict "root" $root "sa" "linkerd-destination") }}
- name: LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES
  value: svc.{{ $v.clusterDomain }}.
- name: LINKERD2_PROXY_DESTINATION_CONTEXT
  value: '{"ns":"$(_pod_ns)","nodeName":"$(_pod_nodeName)","pod":"$(_pod_name)"}'
- name: LINKERD2_PROXY_POLICY_SVC_ADDR
  value: {{ include "partials.serviceAddr" (dict "root" $root "name" "linkerd-policy" "port" 8090) }}
- name: LINKERD2_PROXY_POLICY_SVC_NAME
  value: {{ include "partials.identityName" (dict "root" $root "sa" "linkerd-destination") }}
- name: LINKERD2_PROXY_POLICY_WORKLOAD
  value: '{"ns":"$(_pod_ns)","pod":"$(_pod_name)"}'
- name: LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS
  value: {{ $v.clusterNetworks | quote }}
- name: LINKERD2_PROXY_INBOUND_DEFAULT_POLICY
  value: {{ $v.proxy.defaultInboundPolicy | quote }}
- name: LINKERD2_PROXY_INBOUND_PORTS
  value: {{ .inboundPorts | quote }}
- name: LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION
  value: {{ $v.proxy.opaquePorts | quote }}
- name: LINKERD2_PROXY_CONTROL_LISTEN_ADDR
  value: {{ printf "%s:%d" (ternary "0.0.0.0" "[::]" $v.disableIPv6) (int $v.proxy.ports.control) }}
- name: LINKERD2_PROXY_ADMIN_LISTEN_ADDR
  value: {{ printf "%s:%d" (ternary "0.0.0.0" "[::]" $v.disableIPv6) (int $v.proxy.ports.admin) }}
- name: LINKERD2_PROXY_INBOUND_LISTEN_ADDR
  value: {{ printf "%s:%d" (ternary "0.0.0.0" "[::]" $v.disableIPv6) (int $v.proxy.ports.inbound) }}
- name: LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS
  value: {{ ternary (printf "127.0.0.1:%d" (int $v.proxy.ports.outbound)) (printf "127.0.0.1:%d,[::1]:%d" (int $v.proxy.ports.outbound) (int $v.proxy.ports.outbound)) $v.disableIPv6 }}
- name: LINKERD2_PROXY_IDENTITY_DIR
  value: /var/run/linkerd/identity/end-entity
# The anchors come from the ConfigMap rather than from the values, so that
# the pod templates do not embed them (the trust-root-sha256 annotation
# still rolls the pods when the bundle changes).
- name: LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS
  valueFrom:
    configMapKeyRef:
      name: linkerd-identity-trust-roots
      key: ca-bundle.crt
- name: LINKERD2_PROXY_IDENTITY_TOKEN_FILE
  value: /var/run/secrets/tokens/linkerd-identity-token
- name: LINKERD2_PROXY_IDENTITY_SVC_ADDR
  value: {{ $identityAddr }}
- name: LINKERD2_PROXY_IDENTITY_SVC_NAME
  value: {{ include "partials.identityName" (dict "root" $root "sa" "linkerd-identity") }}
- name: LINKERD2_PROXY_IDENTITY_LOCAL_NAME
  value: {{ include "partials.identityName" (dict "root" $root "sa" .sa) }}
{{- with $v.proxy.shutdownGracePeriod }}
- name: LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD
  value: {{ . | quote }}
{{- end }}
ports:
- name: linkerd-proxy
  containerPort: {{ int $v.proxy.ports.inbound }}
  protocol: TCP
- name: linkerd-admin
  containerPort: {{ int $v.proxy.ports.admin }}
  protocol: TCP
livenessProbe:
  httpGet:
    path: /live
    port: {{ int $v.proxy.ports.admin }}
  initialDelaySeconds: 10
  timeoutSeconds: 1
readinessProbe:
  httpGet:
    path: /ready
    port: {{ int $v.proxy.ports.admin }}
  periodSeconds: 2
  timeoutSeconds: 1
resources:
  {{- include "partials.resources" $v.proxy.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  runAsUser: {{ int $v.proxy.uid }}
  {{- if ge (int $v.proxy.gid) 0 }}
  runAsGroup: {{ int $v.proxy.gid }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
terminationMessagePolicy: FallbackToLogsOnError
volumeMounts:
- name: linkerd-identity-end-entity
  mountPath: /var/run/linkerd/identity/end-entity
- name: linkerd-identity-token
  mountPath: /var/run/secrets/tokens
  readOnly: true
{{- end -}}

{{/* The volumes the proxy mounts: its in-memory identity folder and the projected token (audience identity.l5d.io). No args. */}}
{{- define "partials.proxy-volumes" -}}
- name: linkerd-identity-end-entity
  emptyDir:
    medium: Memory
- name: linkerd-identity-token
  projected:
    sources:
    - serviceAccountToken:
        audience: identity.l5d.io
        expirationSeconds: 86400
        path: linkerd-identity-token
{{- end -}}

{{/*
The pod metadata a meshed control-plane pod carries, as the injector records
it on injected pods, plus the ports that bypass its proxy (destination gives
no mesh identity to endpoints on skipped inbound ports). Args: root,
skipInboundPorts (the component's own, added to proxyInit.ignoreInboundPorts),
skipOutboundPorts (all of them).
*/}}
{{- define "partials.proxy-pod-annotations" -}}
linkerd.io/created-by: linkerd/helm {{ .root.Chart.Version }}
linkerd.io/proxy-version: {{ .root.Values.proxy.image.version | toString | quote }}
linkerd.io/trust-root-sha256: {{ include "partials.trustRootSHA256" .root }}
config.linkerd.io/skip-inbound-ports: {{ include "partials.joinLists" (list .root.Values.proxyInit.ignoreInboundPorts .skipInboundPorts) | quote }}
{{- with .skipOutboundPorts }}
config.linkerd.io/skip-outbound-ports: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "partials.proxy-pod-labels" -}}
linkerd.io/proxy-deployment: {{ .deployment }}
linkerd.io/workload-ns: {{ .root.Release.Namespace }}
{{- end -}}
