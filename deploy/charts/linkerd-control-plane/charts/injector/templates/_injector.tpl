{{/*
injector: the proxy injector, a mutating admission webhook (injector/README.md).
Each template takes the linkerd-control-plane chart's root context; this
component's values are its `injector` section, its webhook's are the
top-level `proxyInjector` and `webhookFailurePolicy` (Linkerd's names).
*/}}

{{- define "injector.manifests" -}}
{{- $v := .Values -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "proxy-injector" "section" $v.injector "name" "linkerd-proxy-injector" -}}
{{- $config := include "partials.injector-config" . -}}
{{- /*
Ports. The API server calls the webhook port 8443 with TLS for the Service's
DNS name: it bypasses the local proxy (inbound skip), so that admission never
depends on the proxy. Outbound, the injector only talks to the Kubernetes
API, which skips the proxy (proxyInit.kubeAPIServerPorts).
*/ -}}
{{- $skipIn := "8443" -}}
{{- $skipOut := include "partials.joinLists" (list $v.proxyInit.ignoreOutboundPorts $v.proxyInit.kubeAPIServerPorts) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: linkerd-proxy-injector
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
---
# The injector's config file: what it adds to meshed pods, from the same
# values as the control plane's own proxies (partials.injector-config).
apiVersion: v1
kind: ConfigMap
metadata:
  name: linkerd-proxy-injector-config
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
data:
  config.yaml: |
    {{- $config | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: linkerd-proxy-injector
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: proxy-injector
    port: 443
    targetPort: proxy-injector
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: linkerd-proxy-injector
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  {{- include "partials.deployment-spec-common" $c | nindent 2 }}
  template:
    metadata:
      annotations:
        # The injector reads its config at start: a new config rolls it.
        checksum/config: {{ sha256sum $config }}
        {{- include "partials.proxy-pod-annotations" (dict "root" . "skipInboundPorts" $skipIn "skipOutboundPorts" $skipOut) | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "partials.selectorLabels" $c | nindent 8 }}
        {{- include "partials.proxy-pod-labels" (dict "root" . "deployment" "linkerd-proxy-injector") | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: linkerd-proxy-injector
      {{- include "partials.pod-scheduling" $c | trim | nindent 6 }}
      initContainers:
      - {{ include "partials.proxy-init" (dict "root" . "ignoreInboundPorts" $skipIn) | indent 8 | trim }}
      {{- if $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-proxy-injector" "inboundPorts" "8443,9995") | indent 8 | trim }}
      {{- end }}
      containers:
      {{- if not $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-proxy-injector" "inboundPorts" "8443,9995") | indent 8 | trim }}
      {{- end }}
      - name: proxy-injector
        image: {{ include "partials.image" (dict "root" . "image" $v.injector.image) }}
        imagePullPolicy: {{ include "partials.pullPolicy" (dict "root" . "image" $v.injector.image) }}
        args:
        - --addr=:8443
        - --admin-addr=:9995
        - --config=/var/run/linkerd/injector/config.yaml
        - --tls-cert-file=/var/run/linkerd/tls/tls.crt
        - --tls-key-file=/var/run/linkerd/tls/tls.key
        {{- include "partials.logArgs" $c | nindent 8 }}
        ports:
        - name: proxy-injector
          containerPort: 8443
          protocol: TCP
        - name: admin-http
          containerPort: 9995
          protocol: TCP
        livenessProbe:
          httpGet:
            path: /live
            port: 9995
          initialDelaySeconds: 10
        readinessProbe:
          httpGet:
            path: /ready
            port: 9995
          periodSeconds: 2
        resources:
          {{- include "partials.resources" $v.injector.resources | nindent 10 }}
        securityContext:
          {{- include "partials.componentSecurityContext" . | nindent 10 }}
        terminationMessagePolicy: FallbackToLogsOnError
        volumeMounts:
        - name: config
          mountPath: /var/run/linkerd/injector
          readOnly: true
        # The webhook certificate; the injector reloads it when it changes.
        - name: tls
          mountPath: /var/run/linkerd/tls
          readOnly: true
      volumes:
      - name: config
        configMap:
          name: linkerd-proxy-injector-config
      - name: tls
        secret:
          secretName: linkerd-proxy-injector-k8s-tls
      {{- include "partials.proxy-volumes" . | nindent 6 }}
{{- include "partials.pdb" $c }}
{{- end -}}

{{/* The injector's RBAC (injector/README.md): a namespace informer, and Events on the pods' controllers anywhere. */}}
{{- define "injector.rbac" -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "proxy-injector" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: linkerd-{{ $ns }}-proxy-injector
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
rules:
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: linkerd-{{ $ns }}-proxy-injector
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: linkerd-{{ $ns }}-proxy-injector
subjects:
- kind: ServiceAccount
  name: linkerd-proxy-injector
  namespace: {{ $ns }}
{{- end -}}

{{/*
The webhook's serving certificate (partials.webhook-tls) and its
registration, in one template so that both see the same certificate.
*/}}
{{- define "injector.webhook" -}}
{{- $v := .Values -}}
{{- $inj := $v.proxyInjector -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "proxy-injector" -}}
{{- $secretName := "linkerd-proxy-injector-k8s-tls" -}}
{{- $tls := include "partials.webhook-tls" (dict "root" . "section" $inj "secret" $secretName "service" "linkerd-proxy-injector") | fromYaml -}}
{{- $ca := $tls.ca -}}
{{- include "partials.webhook-secret" (dict "root" . "component" "proxy-injector" "section" $inj "secret" $secretName "tls" $tls) }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: linkerd-proxy-injector-webhook-config
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
  {{- with include "partials.webhook-ca-annotations" $inj }}
  {{- . | nindent 2 }}
  {{- end }}
webhooks:
- name: linkerd-proxy-injector.linkerd.io
  admissionReviewVersions: [v1]
  clientConfig:
    service:
      name: linkerd-proxy-injector
      namespace: {{ $ns }}
      path: /
      port: 443
    {{- if and $ca (not (or $inj.injectCaFrom $inj.injectCaFromSecret)) }}
    caBundle: {{ $ca | b64enc }}
    {{- end }}
  rules:
  - operations: [CREATE]
    apiGroups: [""]
    apiVersions: [v1]
    resources: [pods, services]
    scope: Namespaced
  failurePolicy: {{ $v.webhookFailurePolicy }}
  matchPolicy: Equivalent
  reinvocationPolicy: IfNeeded
  sideEffects: None
  timeoutSeconds: {{ int $inj.timeoutSeconds }}
  namespaceSelector:
    {{- if kindIs "invalid" $inj.namespaceSelector }}
    matchExpressions:
    - key: config.linkerd.io/admission-webhooks
      operator: NotIn
      values: [disabled]
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [kube-system, cert-manager, {{ $ns }}]
    {{- else }}
    {{- toYaml $inj.namespaceSelector | nindent 4 }}
    {{- end }}
  {{- with $inj.objectSelector }}
  objectSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
