{{/*
The injector's config file (injector/README.md, "Config file"), from the same
values as the control-plane pods' own proxies, so that injected pods and the
control plane agree by construction. The injector decodes it strictly: only
fields of its schema may appear. Arg: root.
*/}}
{{- define "partials.injector-config" -}}
{{- $v := .Values -}}
{{- $bounds := dict -}}
{{- $proxyResources := dict -}}
{{- range $name := list "cpu" "memory" -}}
{{- $b := dict -}}
{{- with (index $v.proxy.resources $name) -}}
{{- if .request -}}{{- $_ := set $b "request" (toString .request) -}}{{- end -}}
{{- if .limit -}}{{- $_ := set $b "limit" (toString .limit) -}}{{- end -}}
{{- end -}}
{{- $_ := set $proxyResources $name $b -}}
{{- end -}}
{{- $initResources := dict -}}
{{- range $name := list "cpu" "memory" -}}
{{- $b := dict -}}
{{- with (index $v.proxyInit.resources $name) -}}
{{- if .request -}}{{- $_ := set $b "request" (toString .request) -}}{{- end -}}
{{- if .limit -}}{{- $_ := set $b "limit" (toString .limit) -}}{{- end -}}
{{- end -}}
{{- $_ := set $initResources $name $b -}}
{{- end -}}
{{- $proxy := dict
  "image" (dict "name" $v.proxy.image.name "version" (toString $v.proxy.image.version) "pullPolicy" (include "partials.pullPolicy" (dict "root" . "image" $v.proxy.image)))
  "ports" (dict "inbound" (int $v.proxy.ports.inbound) "outbound" (int $v.proxy.ports.outbound) "admin" (int $v.proxy.ports.admin) "control" (int $v.proxy.ports.control))
  "uid" (int $v.proxy.uid)
  "gid" (int $v.proxy.gid)
  "logLevel" $v.proxy.logLevel
  "logFormat" $v.proxy.logFormat
  "defaultInboundPolicy" $v.proxy.defaultInboundPolicy
  "opaquePorts" (toString $v.proxy.opaquePorts)
  "nativeSidecar" $v.proxy.nativeSidecar
  "resources" $proxyResources
-}}
{{- with $v.proxy.shutdownGracePeriod -}}{{- $_ := set $proxy "shutdownGracePeriod" . -}}{{- end -}}
{{- $proxyInit := dict
  "image" (dict "name" $v.proxyInit.image.name "version" (toString $v.proxyInit.image.version) "pullPolicy" (include "partials.pullPolicy" (dict "root" . "image" $v.proxyInit.image)))
  "ignoreInboundPorts" (toString $v.proxyInit.ignoreInboundPorts)
  "ignoreOutboundPorts" (toString $v.proxyInit.ignoreOutboundPorts)
  "skipSubnets" (toString $v.proxyInit.skipSubnets)
  "logLevel" $v.proxyInit.logLevel
  "logFormat" $v.proxyInit.logFormat
  "runAsRoot" $v.proxyInit.runAsRoot
  "resources" $initResources
-}}
{{- $cfg := dict
  "apiVersion" "injector.linkerd.io/v1alpha1"
  "kind" "InjectorConfig"
  "controlPlaneNamespace" .Release.Namespace
  "clusterDomain" $v.clusterDomain
  "identityTrustDomain" (include "partials.trustDomain" .)
  "identityTrustAnchorsPEM" $v.identityTrustAnchorsPEM
  "clusterNetworks" $v.clusterNetworks
  "disableIPv6" $v.disableIPv6
  "controlPlane" (dict
    "identity" (dict "serviceAccount" "linkerd-identity")
    "destination" (dict "serviceAccount" "linkerd-destination")
    "policy" (dict "serviceAccount" "linkerd-destination"))
  "proxy" $proxy
  "proxyInit" $proxyInit
-}}
{{- toYaml $cfg -}}
{{- end -}}
