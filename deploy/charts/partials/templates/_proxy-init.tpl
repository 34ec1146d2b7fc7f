{{/*
The linkerd-init container of a meshed control-plane pod: proxy-init with the
same flags the injector gives application pods (injector/README.md), from
the same values (proxy.*, proxyInit.*).

Args:
  root                 the chart's root context
  ignoreInboundPorts   the component's own inbound ports that must bypass its
                       proxy (besides the proxy's control and admin ports and
                       proxyInit.ignoreInboundPorts)
  ignoreOutboundPorts  the component's own outbound ports that must bypass its
                       proxy (besides proxyInit.ignoreOutboundPorts and
                       proxyInit.kubeAPIServerPorts)
*/}}
{{- define "partials.proxy-init" -}}
{{- $v := .root.Values -}}
{{- $in := include "partials.joinLists" (list (printf "%d,%d" (int $v.proxy.ports.control) (int $v.proxy.ports.admin)) $v.proxyInit.ignoreInboundPorts .ignoreInboundPorts) -}}
{{- $out := include "partials.joinLists" (list $v.proxyInit.ignoreOutboundPorts $v.proxyInit.kubeAPIServerPorts .ignoreOutboundPorts) -}}
name: linkerd-init
image: {{ include "partials.image" (dict "root" .root "image" $v.proxyInit.image) }}
imagePullPolicy: {{ include "partials.pullPolicy" (dict "root" .root "image" $v.proxyInit.image) }}
args:
- --incoming-proxy-port={{ int $v.proxy.ports.inbound }}
- --outgoing-proxy-port={{ int $v.proxy.ports.outbound }}
- --proxy-uid={{ int $v.proxy.uid }}
{{- if ge (int $v.proxy.gid) 0 }}
- --proxy-gid={{ int $v.proxy.gid }}
{{- end }}
- --inbound-ports-to-ignore={{ $in }}
{{- with $out }}
- --outbound-ports-to-ignore={{ . }}
{{- end }}
{{- with $v.proxyInit.skipSubnets }}
- --subnets-to-ignore={{ . }}
{{- end }}
{{- if $v.disableIPv6 }}
- --ipv6=false
{{- end }}
- --log-level={{ $v.proxyInit.logLevel }}
- --log-format={{ $v.proxyInit.logFormat }}
resources:
  {{- include "partials.resources" $v.proxyInit.resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    add: [NET_ADMIN, NET_RAW]
    drop: [ALL]
  privileged: false
  readOnlyRootFilesystem: true
  {{- if $v.proxyInit.runAsRoot }}
  runAsNonRoot: false
  runAsUser: 0
  {{- else }}
  runAsNonRoot: true
  runAsUser: 65534
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}
