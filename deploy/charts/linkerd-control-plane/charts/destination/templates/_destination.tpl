{{/*
destination: service discovery, profiles and inbound policy (destination/README.md).
Each template takes the linkerd-control-plane chart's root context; this
component's values are its `destination` section.
*/}}

{{- define "destination.manifests" -}}
{{- $v := .Values -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "destination" "section" $v.destination "name" "linkerd-destination" -}}
{{- /*
Ports. Proxies reach the gRPC ports 8086 (discovery) and 8090 (inbound
policy) with TLS that destination terminates itself, with server name
linkerd-destination.<ns>.serviceaccount.identity.<ns>.<trust-domain>,
which is also this pod's own proxy identity: both bypass the local proxy
(inbound skip, announced by config.linkerd.io/skip-inbound-ports), or the
proxy would take those connections as its own. Outbound, destination talks
to the Kubernetes API (informers) and to identity's gRPC port 8080 for its
own certificate, over TLS it checks itself against identity's name: both
skip the proxy, so that destination never depends on its own proxy, which in
turn needs destination for discovery. The API server calls the policy
validator on 9443 with TLS for the Service's name (linkerd-policy-validator),
which destination also terminates itself: skipped inbound too.
*/ -}}
{{- $skipIn := "8086,8090,9443" -}}
{{- $skipOut := include "partials.joinLists" (list $v.proxyInit.ignoreOutboundPorts $v.proxyInit.kubeAPIServerPorts "8080") -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: linkerd-destination
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: linkerd-dst
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: grpc
    port: 8086
    targetPort: 8086
---
# Proxies dial destination through this one: every replica's address.
apiVersion: v1
kind: Service
metadata:
  name: linkerd-dst-headless
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: grpc
    port: 8086
    targetPort: 8086
---
# The inbound policy API. Headless, like linkerd-dst-headless: each proxy
# resolves every replica and keeps its policy streams on them.
apiVersion: v1
kind: Service
metadata:
  name: linkerd-policy
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: grpc
    port: 8090
    targetPort: 8090
---
# The policy validator, the admission webhook the API server calls.
apiVersion: v1
kind: Service
metadata:
  name: linkerd-policy-validator
  namespace: {{ $ns }}
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "partials.selectorLabels" $c | nindent 4 }}
  ports:
  - name: policy-https
    port: 443
    targetPort: policy-https
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: linkerd-destination
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
        {{- include "partials.proxy-pod-labels" (dict "root" . "deployment" "linkerd-destination") | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: linkerd-destination
      {{- include "partials.pod-scheduling" $c | trim | nindent 6 }}
      initContainers:
      - {{ include "partials.proxy-init" (dict "root" . "ignoreInboundPorts" $skipIn "ignoreOutboundPorts" "8080") | indent 8 | trim }}
      {{- if $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-destination" "inboundPorts" "8086,8090,9443,9996") | indent 8 | trim }}
      {{- end }}
      containers:
      {{- if not $v.proxy.nativeSidecar }}
      - {{ include "partials.proxy" (dict "root" . "sa" "linkerd-destination" "inboundPorts" "8086,8090,9443,9996") | indent 8 | trim }}
      {{- end }}
      - name: destination
        image: {{ include "partials.image" (dict "root" . "image" $v.destination.image) }}
        imagePullPolicy: {{ include "partials.pullPolicy" (dict "root" . "image" $v.destination.image) }}
        args:
        - --grpc-addr=:8086
        - --policy-addr=:8090
        - --admin-addr=:9996
        - --admission-addr=:9443
        - --admission-tls-cert-file=/var/run/linkerd/tls/tls.crt
        - --admission-tls-key-file=/var/run/linkerd/tls/tls.key
        - --cluster-domain={{ $v.clusterDomain }}
        - --controller-namespace={{ $ns }}
        - --identity-trust-domain={{ include "partials.trustDomain" . }}
        - --default-opaque-ports={{ $v.proxy.opaquePorts }}
        - --enable-h2-upgrade={{ $v.enableH2Upgrade }}
        - --default-inbound-policy={{ $v.proxy.defaultInboundPolicy }}
        - --cluster-networks={{ $v.clusterNetworks }}
        - --identity-service-account=linkerd-destination
        - --identity-addr={{ include "partials.serviceAddr" (dict "root" . "name" "linkerd-identity-headless" "port" 8080) }}
        - --identity-server-name={{ include "partials.identityName" (dict "root" . "sa" "linkerd-identity") }}
        - --identity-trust-anchors-file=/var/run/linkerd/identity/trust-roots/ca-bundle.crt
        - --identity-token-file=/var/run/secrets/tokens/linkerd-identity-token
        {{- include "partials.logArgs" $c | nindent 8 }}
        ports:
        - name: grpc
          containerPort: 8086
          protocol: TCP
        - name: policy-grpc
          containerPort: 8090
          protocol: TCP
        - name: policy-https
          containerPort: 9443
          protocol: TCP
        - name: admin-http
          containerPort: 9996
          protocol: TCP
        livenessProbe:
          httpGet:
            path: /live
            port: 9996
          initialDelaySeconds: 10
        readinessProbe:
          httpGet:
            path: /ready
            port: 9996
          periodSeconds: 2
        resources:
          {{- include "partials.resources" $v.destination.resources | nindent 10 }}
        securityContext:
          {{- include "partials.componentSecurityContext" . | nindent 10 }}
        terminationMessagePolicy: FallbackToLogsOnError
        volumeMounts:
        - name: trust-roots
          mountPath: /var/run/linkerd/identity/trust-roots
          readOnly: true
        - name: policy-tls
          mountPath: /var/run/linkerd/tls
          readOnly: true
        # The projected token (audience identity.l5d.io) the proxy also uses:
        # destination gets its own certificate from identity with it.
        - name: linkerd-identity-token
          mountPath: /var/run/secrets/tokens
          readOnly: true
      volumes:
      - name: trust-roots
        configMap:
          name: linkerd-identity-trust-roots
      - name: policy-tls
        secret:
          secretName: linkerd-policy-validator-k8s-tls
      {{- include "partials.proxy-volumes" . | nindent 6 }}
{{- include "partials.pdb" $c }}
{{- end -}}

{{/* destination's RBAC (destination/README.md): it only reads, through informers. */}}
{{- define "destination.rbac" -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "destination" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: linkerd-{{ $ns }}-destination
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
- apiGroups: [linkerd.io]
  resources: [serviceprofiles]
  verbs: [list, watch]
- apiGroups: [policy.linkerd.io]
  resources: [servers, serverauthorizations, authorizationpolicies, meshtlsauthentications, networkauthentications, httproutes]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: linkerd-{{ $ns }}-destination
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: linkerd-{{ $ns }}-destination
subjects:
- kind: ServiceAccount
  name: linkerd-destination
  namespace: {{ $ns }}
{{- end -}}


{{/*
The policy validator's serving certificate (partials.webhook-tls) and its
registration: the API server sends it every policy.linkerd.io object written,
and stores only those it allows (destination/README.md, "Policy validator").
*/}}
{{- define "destination.policy-validator" -}}
{{- $v := .Values -}}
{{- $pv := $v.policyValidator -}}
{{- $ns := .Release.Namespace -}}
{{- $c := dict "root" . "component" "destination" -}}
{{- $secretName := "linkerd-policy-validator-k8s-tls" -}}
{{- $tls := include "partials.webhook-tls" (dict "root" . "section" $pv "secret" $secretName "service" "linkerd-policy-validator") | fromYaml -}}
{{- include "partials.webhook-secret" (dict "root" . "component" "destination" "section" $pv "secret" $secretName "tls" $tls) }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: linkerd-policy-validator-webhook-config
  labels:
    {{- include "partials.labels" $c | nindent 4 }}
  {{- with include "partials.webhook-ca-annotations" $pv }}
  {{- . | nindent 2 }}
  {{- end }}
webhooks:
- name: linkerd-policy-validator.linkerd.io
  admissionReviewVersions: [v1]
  clientConfig:
    service:
      name: linkerd-policy-validator
      namespace: {{ $ns }}
      path: /
      port: 443
    {{- if and $tls.ca (not (or $pv.injectCaFrom $pv.injectCaFromSecret)) }}
    caBundle: {{ $tls.ca | b64enc }}
    {{- end }}
  rules:
  - operations: [CREATE, UPDATE]
    apiGroups: [policy.linkerd.io]
    apiVersions: ["*"]
    resources: [authorizationpolicies, httproutes, meshtlsauthentications, networkauthentications, serverauthorizations, servers]
    scope: Namespaced
  failurePolicy: {{ $v.webhookFailurePolicy }}
  matchPolicy: Equivalent
  sideEffects: None
  timeoutSeconds: {{ int $pv.timeoutSeconds }}
  namespaceSelector:
    {{- if kindIs "invalid" $pv.namespaceSelector }}
    matchExpressions:
    - key: config.linkerd.io/admission-webhooks
      operator: NotIn
      values: [disabled]
    {{- else }}
    {{- toYaml $pv.namespaceSelector | nindent 4 }}
    {{- end }}
{{- end -}}
