{{/*
The serving certificate of an admission webhook called by the API server
(the proxy injector's, the policy validator's), as YAML with keys crt, key
and ca (PEM; "" when the chart writes no Secret). Args: root, section (the
webhook's values: externalSecret, crtPEM, keyPEM, caBundle), secret (the
Secret's name), service (the Service's name).

Where the certificate comes from, first match wins:
  section.externalSecret   someone else writes the Secret; the CA comes from
                           section.caBundle or cert-manager's CA injector
                           (injectCaFrom/injectCaFromSecret)
  section.crtPEM/keyPEM    given; CA = section.caBundle, else crtPEM
  the existing Secret      read back with lookup: upgrades keep it, so they
                           neither rotate it nor restart the pod serving it
  generated                a P-256 CA and a certificate for the Service's
                           names, valid 10 years (a webhook certificate that
                           expires silently turns into unmeshed pods, or
                           unchecked policy, under failurePolicy Ignore)
`helm template` and --dry-run cannot look up, so they always generate.
*/}}
{{- define "partials.webhook-tls" -}}
{{- $s := .section -}}
{{- $ns := .root.Release.Namespace -}}
{{- $host := printf "%s.%s.svc" .service $ns -}}
{{- $crt := "" -}}
{{- $key := "" -}}
{{- $ca := $s.caBundle -}}
{{- if not $s.externalSecret -}}
{{- if $s.crtPEM -}}
{{- $crt = $s.crtPEM -}}
{{- $key = $s.keyPEM -}}
{{- $ca = default $s.crtPEM $s.caBundle -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $ns .secret -}}
{{- $data := dig "data" dict $existing -}}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") -}}
{{- $crt = index $data "tls.crt" | b64dec -}}
{{- $key = index $data "tls.key" | b64dec -}}
{{- $ca = default (index $data "ca.crt" | b64dec) $s.caBundle -}}
{{- else -}}
{{- $caCert := genCAWithKey (printf "%s.%s CA" .service $ns) 3650 (genPrivateKey "ecdsa") -}}
{{- $cert := genSignedCertWithKey $host nil (list $host (printf "%s.%s" $host .root.Values.clusterDomain)) 3650 $caCert (genPrivateKey "ecdsa") -}}
{{- $crt = $cert.Cert -}}
{{- $key = $cert.Key -}}
{{- $ca = default $caCert.Cert $s.caBundle -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "crt" $crt "key" $key "ca" $ca | toYaml -}}
{{- end -}}

{{/*
The webhook's Secret (kubernetes.io/tls), unless section.externalSecret.
Args: root, component, section, secret, tls (partials.webhook-tls, parsed).
*/}}
{{- define "partials.webhook-secret" -}}
{{- if not .section.externalSecret }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .secret }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "partials.labels" (dict "root" .root "component" .component) | nindent 4 }}
type: kubernetes.io/tls
data:
  tls.crt: {{ .tls.crt | b64enc }}
  tls.key: {{ .tls.key | b64enc }}
  ca.crt: {{ .tls.ca | b64enc }}
{{- end }}
{{- end -}}

{{/*
cert-manager's CA injection annotations of a webhook configuration, or "".
Arg: the section. Use: with include ... | nindent.
*/}}
{{- define "partials.webhook-ca-annotations" -}}
{{- if or .injectCaFrom .injectCaFromSecret -}}
annotations:
  {{- with .injectCaFrom }}
  cert-manager.io/inject-ca-from: {{ . }}
  {{- end }}
  {{- with .injectCaFromSecret }}
  cert-manager.io/inject-ca-from-secret: {{ . }}
  {{- end }}
{{- end -}}
{{- end -}}
