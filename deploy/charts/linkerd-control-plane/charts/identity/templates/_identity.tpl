{{/*
identity: the mesh's certificate authority (identity/README.md).
Each template takes the linkerd-control-plane chart's root context; this
component's values are its `identity` section.
*/}}

{{- define "identity.manifests" -}}
{{- $v := .Values -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "identity" "section" $v.identity "name" "linkerd-identity" -}}
{{- /*
Ports. The proxies of the whole mesh (and destination) reach identity's gRPC
port with TLS that identity terminates itself, with server name
linkerd-identity.<ns>.serviceaccount.identity.<ns>.<trust-domain>. That is
also this pod's own proxy identity, so a proxy in the way would take those
connections as its own and answer with the wrong certificate: 8080 bypasses
the local proxy (inbound skip, also announced with the
config.linkerd.io/skip-inbound-ports annotation, so destination never tells
clients to wrap it in mesh TLS). The admin port 9990 goes through the proxy
like any application port. Outbound, identity only talks to the Kubernetes
API (TokenReviews, Events), which skips the proxy (proxyInit.kubeAPIServerPorts).
*/ -}}
{{- $skipIn := "8080" -}}
{{- $skipOut := include "partials.joinLists" (list $v.proxyInit.ignoreOutboundPorts $v.proxyInit.kubeAPIServerPorts) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: linkerd-identity
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
{{- if eq $v.identity.issuer.scheme "linkerd.io/tls" }}
---
# The issuer certificate and key, in the layout of the linkerd.io/tls scheme.
# With scheme kubernetes.io/tls the Secret is not part of the release:
# cert-manager (or anyone) writes it, with keys tls.crt and tls.key.
apiVersion: v1
kind: Secret
metadata:
  name: linkerd-identity-issuer
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
type: Opaque
data:
  crt.pem: {{ $v.identity.issuer.tls.crtPEM | b64enc }}
  key.pem: {{ $v.identity.issuer.tls.keyPEM | b64enc }}
{{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: linkerd-identity
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: grpc
    port: 8080
    targetPort: 8080
---
# Proxies dial identity through this one: every replica's address, so they
# spread over replicas themselves.
apiVersion: v1
kind: Service
metadata:
  name: linkerd-identity-headless
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: grpc
    port: 8080
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: linkerd-identity
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  {{- include "partials.deployment-spec-common" $c | nindent 2 }}
  template:
    metadata:
      annotations:
        {{- include "partials.proxy-pod-annotations" (dict "root" . "skipInboundPorts" $skipIn "skipOutboundPorts" $skipOut) | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "partials.selectorLabels" $c | nindent 8 }}
        {{- include "partials.proxy-pod-labels" (dict "root" . "deployment" "linkerd-identity") | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: linkerd-identity
      {{- include "partials.pod-scheduling" $c | trim | nindent 6 }}
      initContainers:
      - {{ include "partials.proxy-init" (dict "root" . "ignoreInboundPorts" $skipIn) | indent 8 | trim }}
      {{- if $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-identity" "inboundPorts" "8080,9990" "identityAddr" "127.0.0.1:8080") | indent 8 | trim }}
      {{- end }}
      containers:
      {{- if not $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-identity" "inboundPorts" "8080,9990" "identityAddr" "127.0.0.1:8080") | indent 8 | trim }}
      {{- end }}
      - name: identity
        image: {{ include "partials.image" (dict "root" . "image" $v.identity.image) }}
        imagePullPolicy: {{ include "partials.pullPolicy" (dict "root" . "image" $v.identity.image) }}
        args:
        - --addr=:8080
        - --admin-addr=:9990
        - --trust-domain={{ include "partials.trustDomain" . }}
        - --control-plane-namespace={{ $ns }}
        - --service-account=linkerd-identity
        - --issuance-lifetime={{ $v.identity.issuer.issuanceLifetime }}
        - --clock-skew-allowance={{ $v.identity.issuer.clockSkewAllowance }}
        - --issuer-scheme={{ $v.identity.issuer.scheme }}
        - --issuer-dir=/var/run/linkerd/identity/issuer
        - --issuer-secret=linkerd-identity-issuer
        - --trust-anchors-file=/var/run/linkerd/identity/trust-roots/ca-bundle.crt
        {{- include "partials.logArgs" $c | nindent 8 }}
        ports:
        - name: grpc
          containerPort: 8080
          protocol: TCP
        - name: admin-http
          containerPort: 9990
          protocol: TCP
        livenessProbe:
          httpGet:
            path: /live
            port: 9990
          initialDelaySeconds: 10
        readinessProbe:
          httpGet:
            path: /ready
            port: 9990
          periodSeconds: 2
        resources:
          {{- include "partials.resources" $v.identity.resources | nindent 10 }}
        securityContext:
          {{- include "partials.componentSecurityContext" . | nindent 10 }}
        terminationMessagePolicy: FallbackToLogsOnError
        volumeMounts:
        - name: identity-issuer
          mountPath: /var/run/linkerd/identity/issuer
          readOnly: true
        - name: trust-roots
          mountPath: /var/run/linkerd/identity/trust-roots
          readOnly: true
      volumes:
      - name: identity-issuer
        secret:
          secretName: linkerd-identity-issuer
      - name: trust-roots
        configMap:
          name: linkerd-identity-trust-roots
      {{- include "partials.proxy-volumes" . | nindent 6 }}
{{- include "partials.pdb" $c }}
{{- end -}}

{{/* identity's RBAC (identity/README.md): TokenReviews, and Events on its issuer Secret in its own namespace. */}}
{{- define "identity.rbac" -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "identity" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: linkerd-{{ $ns }}-identity
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
rules:
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: linkerd-{{ $ns }}-identity
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: linkerd-{{ $ns }}-identity
subjects:
- kind: ServiceAccount
  name: linkerd-identity
  namespace: {{ $ns }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: linkerd-identity
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
rules:
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: linkerd-identity
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: linkerd-identity
subjects:
- kind: ServiceAccount
  name: linkerd-identity
  namespace: {{ $ns }}
{{- end -}}
