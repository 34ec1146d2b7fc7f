{{/*
Checks of the values that values.schema.json cannot express, each failing with
a message that says what to pass. Templates cannot parse certificates, so the
PEM checks are about shape (only the expected block types, base64 bodies);
identity checks the certificates themselves at start.
*/}}

{{/* Fails unless .value is one or more PEM CERTIFICATE blocks. Args: name, value, hint. */}}
{{- define "partials.checkCertificates" -}}
{{- $blocks := regexFindAll "-----BEGIN [A-Z0-9 ]+-----" .value -1 -}}
{{- if not (regexMatch "^\\s*(-----BEGIN CERTIFICATE-----\\s+[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----\\s*)+$" .value) -}}
{{- fail (printf "%s is not a PEM certificate bundle: it must hold only -----BEGIN CERTIFICATE----- blocks, but holds %s%s" .name (ternary "no PEM block at all" (join ", " $blocks) (empty $blocks)) .hint) -}}
{{- end -}}
{{- end -}}

{{/* Fails unless .value is one PEM private key (PKCS#8, SEC 1 EC with optional EC PARAMETERS, PKCS#1 RSA). Args: name, value. */}}
{{- define "partials.checkPrivateKey" -}}
{{- $blocks := regexFindAll "-----BEGIN [A-Z0-9 ]+-----" .value -1 -}}
{{- if not (regexMatch "^\\s*(-----BEGIN EC PARAMETERS-----\\s+[A-Za-z0-9+/=\\s]+-----END EC PARAMETERS-----\\s*)?-----BEGIN (EC |RSA )?PRIVATE KEY-----\\s+[A-Za-z0-9+/=\\s]+-----END (EC |RSA )?PRIVATE KEY-----\\s*$" .value) -}}
{{- fail (printf "%s is not a PEM private key: it must hold one -----BEGIN PRIVATE KEY----- (or EC / RSA PRIVATE KEY) block, but holds %s" .name (ternary "no PEM block at all" (join ", " $blocks) (empty $blocks))) -}}
{{- end -}}
{{- end -}}

{{/* Every check of the control-plane chart's values. Arg: root. */}}
{{- define "partials.validate" -}}
{{- $v := .Values -}}
{{- if not $v.identityTrustAnchorsPEM -}}
{{- fail "identityTrustAnchorsPEM is required: pass the trust anchor certificate with --set-file identityTrustAnchorsPEM=ca.crt" -}}
{{- end -}}
{{- include "partials.checkCertificates" (dict "name" "identityTrustAnchorsPEM" "value" $v.identityTrustAnchorsPEM "hint" " (pass the trust anchor with --set-file identityTrustAnchorsPEM=ca.crt)") -}}
{{- $issuer := $v.identity.issuer -}}
{{- if eq $issuer.scheme "linkerd.io/tls" -}}
{{- $other := " (or set identity.issuer.scheme=kubernetes.io/tls to use a linkerd-identity-issuer Secret written by cert-manager)" -}}
{{- if not $issuer.tls.crtPEM -}}
{{- fail (printf "identity.issuer.tls.crtPEM is required with identity.issuer.scheme=linkerd.io/tls: pass --set-file identity.issuer.tls.crtPEM=issuer.crt%s" $other) -}}
{{- end -}}
{{- if not $issuer.tls.keyPEM -}}
{{- fail (printf "identity.issuer.tls.keyPEM is required with identity.issuer.scheme=linkerd.io/tls: pass --set-file identity.issuer.tls.keyPEM=issuer.key%s" $other) -}}
{{- end -}}
{{- include "partials.checkCertificates" (dict "name" "identity.issuer.tls.crtPEM" "value" $issuer.tls.crtPEM "hint" " (the issuer certificate, then any intermediates)") -}}
{{- include "partials.checkPrivateKey" (dict "name" "identity.issuer.tls.keyPEM" "value" $issuer.tls.keyPEM) -}}
{{- end -}}
{{- $inj := $v.proxyInjector -}}
{{- if and $inj.externalSecret (not (or $inj.caBundle $inj.injectCaFrom $inj.injectCaFromSecret)) -}}
{{- fail "proxyInjector.externalSecret=true needs the webhook's CA: set proxyInjector.caBundle, or let cert-manager inject it with proxyInjector.injectCaFrom or proxyInjector.injectCaFromSecret" -}}
{{- end -}}
{{- if and (not $inj.externalSecret) (or $inj.crtPEM $inj.keyPEM) -}}
{{- if not (and $inj.crtPEM $inj.keyPEM) -}}
{{- fail "proxyInjector.crtPEM and proxyInjector.keyPEM go together: pass both (or neither, and the chart generates the webhook certificate)" -}}
{{- end -}}
{{- include "partials.checkCertificates" (dict "name" "proxyInjector.crtPEM" "value" $inj.crtPEM "hint" "") -}}
{{- include "partials.checkPrivateKey" (dict "name" "proxyInjector.keyPEM" "value" $inj.keyPEM) -}}
{{- end -}}
{{- with $inj.caBundle -}}
{{- include "partials.checkCertificates" (dict "name" "proxyInjector.caBundle" "value" . "hint" "") -}}
{{- end -}}
{{- end -}}
