{{/* The chart's name. */}}
{{- define "digicert-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name when it already contains the chart's. */}}
{{- define "digicert-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* `<fullname>-<suffix>`, within 63 characters. Call with (list . "suffix"). */}}
{{- define "digicert-operator.suffixed" -}}
{{- $ctx := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "digicert-operator.fullname" $ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "digicert-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "digicert-operator.labels" -}}
helm.sh/chart: {{ include "digicert-operator.chart" . }}
app.kubernetes.io/name: {{ include "digicert-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: digicert-operator
{{- end -}}

{{/* Selector labels of the operator's pods. */}}
{{- define "digicert-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "digicert-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Selector labels of the simulator's pod. */}}
{{- define "digicert-operator.simulatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "digicert-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: simulator
{{- end -}}

{{- define "digicert-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "digicert-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the ServiceAccount to run as, when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest. Call with (list . image); an image without
a repository is the operator's, whose repository is required: no public registry has
the image. */}}
{{- define "digicert-operator.imageRef" -}}
{{- $ctx := index . 0 -}}
{{- $img := index . 1 -}}
{{- if not $img.repository -}}{{- $img = $ctx.Values.image -}}{{- end -}}
{{- $example := printf "REGISTRY/digicert-operator:%s" $ctx.Chart.AppVersion -}}
{{- $repository := required (printf "image.repository is required: no public registry has the digicert-operator image. Build it from the repository's Dockerfile and push it to a registry your cluster pulls from (docker build -t %s . && docker push %s), then set image.repository=REGISTRY/digicert-operator" $example $example) $img.repository -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default $ctx.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The simulator's image: simulator.image, or else the operator's registry path with
the name certcentral-sim (the Dockerfile's `simulator` target), the chart's version. */}}
{{- define "digicert-operator.simulatorImageRef" -}}
{{- $img := .Values.simulator.image -}}
{{- if not $img.repository -}}
{{- /* Without image.repository the operator's own message says what to build. */ -}}
{{- $_ := include "digicert-operator.imageRef" (list . .Values.image) -}}
{{- $operator := .Values.image.repository -}}
{{- $repository := "certcentral-sim" -}}
{{- if contains "/" $operator -}}{{- $repository = printf "%s/certcentral-sim" (dir $operator) -}}{{- end -}}
{{- $img = dict "repository" $repository "tag" $img.tag "digest" $img.digest -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the operator runs with leader election. */}}
{{- define "digicert-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- define "digicert-operator.leaseName" -}}
{{- default (include "digicert-operator.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* Whether the chart creates the API key Secret ("true" or empty). */}}
{{- define "digicert-operator.createApiKeySecret" -}}
{{- if and .Values.apiKey.value .Values.apiKey.existingSecret -}}
{{- fail "apiKey.value and apiKey.existingSecret: set only one of them" -}}
{{- end -}}
{{- if or .Values.apiKey.value (and .Values.simulator.enabled (not .Values.apiKey.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{/* The API key Secret the operator reads by default. */}}
{{- define "digicert-operator.apiKeySecretName" -}}
{{- if .Values.apiKey.existingSecret -}}
{{- .Values.apiKey.existingSecret -}}
{{- else if include "digicert-operator.createApiKeySecret" . -}}
{{- include "digicert-operator.suffixed" (list . "api-key") -}}
{{- else -}}
digicert-api-key
{{- end -}}
{{- end -}}

{{/* The operator's default DigicertAccount (empty: none). */}}
{{- define "digicert-operator.defaultAccountName" -}}
{{- if .Values.defaultAccount.name -}}
{{- .Values.defaultAccount.name -}}
{{- else if .Values.defaultAccount.create -}}
{{- include "digicert-operator.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* The default account's namespaceSelector (JSON): as set, else the watched
namespaces, else every namespace. */}}
{{- define "digicert-operator.defaultAccountSelector" -}}
{{- if kindIs "map" .Values.defaultAccount.namespaceSelector -}}
{{- toJson .Values.defaultAccount.namespaceSelector -}}
{{- else if .Values.watchNamespaces -}}
{{- dict "matchExpressions" (list (dict "key" "kubernetes.io/metadata.name" "operator" "In" "values" .Values.watchNamespaces)) | toJson -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{- define "digicert-operator.simulatorName" -}}
{{- include "digicert-operator.suffixed" (list . "simulator") -}}
{{- end -}}

{{/* The simulator's Service URL, as the operator's CertCentral URL. */}}
{{- define "digicert-operator.simulatorURL" -}}
{{- printf "https://%s.%s.svc:8443/services/v2" (include "digicert-operator.simulatorName" .) .Release.Namespace -}}
{{- end -}}

{{- define "digicert-operator.certcentralURL" -}}
{{- if .Values.simulator.enabled -}}
{{- include "digicert-operator.simulatorURL" . -}}
{{- else -}}
{{- .Values.certcentral.url -}}
{{- end -}}
{{- end -}}

{{/*
The simulator's serving certificate and its CA, as JSON {"ca", "cert", "key"} (PEM).
Kept from the installed Secret when there is one, so upgrades keep it; otherwise
generated. Generated once per render: every template sees the same.
*/}}
{{- define "digicert-operator.simulatorTLS" -}}
{{- if not (hasKey .Values "__simulatorTLS") -}}
{{- $name := include "digicert-operator.simulatorName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $tls := dict -}}
{{- $existing := lookup "v1" "Secret" $ns (printf "%s-tls" $name) -}}
{{- $data := dict -}}
{{- if $existing -}}{{- $data = default dict $existing.data -}}{{- end -}}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") -}}
{{- $tls = dict "ca" (index $data "ca.crt" | b64dec) "cert" (index $data "tls.crt" | b64dec) "key" (index $data "tls.key" | b64dec) -}}
{{- else -}}
{{- $ca := genCA (printf "%s CA" $name) 3650 -}}
{{- $dns := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) "localhost" -}}
{{- $cert := genSignedCert $name (list "127.0.0.1") $dns 3650 $ca -}}
{{- $tls = dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key -}}
{{- end -}}
{{- $_ := set .Values "__simulatorTLS" $tls -}}
{{- end -}}
{{- get .Values "__simulatorTLS" | toJson -}}
{{- end -}}

{{/* The CA certificates the operator trusts beside the system's (PEM; may be empty). */}}
{{- define "digicert-operator.caBundle" -}}
{{- $parts := list -}}
{{- with .Values.certcentral.caBundle | trim -}}{{- $parts = append $parts . -}}{{- end -}}
{{- if .Values.simulator.enabled -}}
{{- $parts = append $parts ((include "digicert-operator.simulatorTLS" . | fromJson).ca | trim) -}}
{{- end -}}
{{- if $parts -}}{{- printf "%s\n" (join "\n" $parts) -}}{{- end -}}
{{- end -}}

{{/* The rules in every watched namespace (or cluster-wide). */}}
{{- define "digicert-operator.watchRules" -}}
# The orders: watched; the finalizer added and removed (patch); the status replaced
# against the version read (update).
- apiGroups: [digicert-operator.dev]
  resources: [digicertorders]
  verbs: [get, list, watch, patch]
- apiGroups: [digicert-operator.dev]
  resources: [digicertorders/status]
  verbs: [update]
# Secrets it writes are owned by their order with blockOwnerDeletion, which clusters
# with the OwnerReferencesPermissionEnforcement admission plugin (OpenShift) allow
# only with this.
- apiGroups: [digicert-operator.dev]
  resources: [digicertorders/finalizers]
  verbs: [update]
# The certificate Secrets and pending keys it writes with server-side apply (create,
# patch) and deletes; it watches only those it labels. Also the API keys that orders
# name with spec.apiKeySecretRef (get).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch, delete]
# Events about the orders. A repeat with a new note is patched through the core/v1
# view (events.k8s.io/v1 keeps a note immutable), so the event shows the latest one.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [patch]
# Domain validation records published through external-dns (owned by their order).
- apiGroups: [externaldns.k8s.io]
  resources: [dnsendpoints]
  verbs: [get, create, patch, delete]
# The cert-manager external issuer: the CertificateRequests for its issuers (watched;
# what was sent to DigiCert annotated before the send: patch; the outcome written to
# status), the Certificates that hold an order's claim (get), and the namespaced
# DigicertIssuers (watched; their Ready condition).
- apiGroups: [cert-manager.io]
  resources: [certificaterequests]
  verbs: [get, list, watch, patch]
- apiGroups: [cert-manager.io]
  resources: [certificaterequests/status]
  verbs: [patch]
- apiGroups: [cert-manager.io]
  resources: [certificates]
  verbs: [get]
- apiGroups: [digicert-operator.dev]
  resources: [digicertissuers]
  verbs: [get, list, watch]
- apiGroups: [digicert-operator.dev]
  resources: [digicertissuers/status]
  verbs: [patch]
{{- end -}}

{{/*
Whether to grant cert-manager's approver our signer names: `auto` when the cluster
serves cert-manager.io/v1.
*/}}
{{- define "digicert-operator.certManagerApprover" -}}
{{- $create := .Values.certManager.approverRBAC.create -}}
{{- if or (eq (toString $create) "true") (and (eq (toString $create) "auto") (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
true
{{- end -}}
{{- end -}}
