{{- /* "true" when watchNamespaces names namespaces (no glob): Roles per namespace. */ -}}
{{- define "modelrelease.namespacedRBAC" -}}
{{- and .Values.watchNamespaces (not (include "modelrelease.globs" . | eq "true")) -}}
{{- end -}}

{{- define "modelrelease.globs" -}}
{{- $globs := false -}}
{{- range .Values.watchNamespaces -}}
{{- if regexMatch "[*?\\[!]" . -}}{{- $globs = true -}}{{- end -}}
{{- end -}}
{{- $globs -}}
{{- end -}}

{{- /* Rules on what has no namespace, or must be seen in every namespace. */ -}}
{{- define "modelrelease.clusterRules" -}}
# The GPU view: free GPUs per Node, and the GPUs every bound Pod holds, in any namespace.
- apiGroups: [""]
  resources: [nodes, pods]
  verbs: [list, watch]
- apiGroups: [modelrelease.dev]
  resources: [clusterslotemplates]
  verbs: [list, watch]
# get: which Gateway API and Istio versions are installed (mirror percent, served
# version); list and watch: kopf notices the ModelRelease CRD appear or change.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end -}}

{{- /* Rules in the watched namespaces (all of them, when cluster-wide). */ -}}
{{- define "modelrelease.namespacedRules" -}}
- apiGroups: [modelrelease.dev]
  resources: [modelreleases]
  verbs: [list, watch, patch]
- apiGroups: [modelrelease.dev]
  resources: [modelreleases/status]
  verbs: [patch]
- apiGroups: [modelrelease.dev]
  resources: [slotemplates]
  verbs: [list, watch]
# Server-side apply creates what is missing, so it needs create as well as patch.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch]
# An HPA aimed at a release's Deployment instead of the release gets a Warning Event.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch]
{{- if .Values.rbac.secrets }}
# Only `get`, by name, for the Secrets a release names in analysis.prometheus
# (authSecretRef, caSecretRef). RBAC cannot select by label: the operator itself
# reads only Secrets in the release's namespace labelled
# modelrelease.dev/credentials=true, and never lists or watches Secrets.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.rbac.gatewayAPI }}
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch]
{{- end }}
{{- if .Values.rbac.istio }}
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, create, patch]
{{- end }}
{{- end -}}
