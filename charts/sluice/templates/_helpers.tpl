{{/* Names and labels shared by every template. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "sluice.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) }}
{{- end }}
{{- end }}

{{- define "sluice.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}

{{/* Namespaces that get the runner ServiceAccount: every watched one (with watchNamespaces), else
the release's. Never the release namespace of a namespaced release: two releases sharing one
namespace (sharding, docs/sharding.md) would both own it there. */}}
{{- define "sluice.runnerNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- .Values.watchNamespaces | uniq | join "," }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* The operator's rules on the namespaced resources it touches; see operator/sluice/kube/. */}}
{{- define "sluice.operatorRules" -}}
# Watched by kopf, listed on start-up and every resync.
- apiGroups: ["sluice.dev"]
  resources: ["testexecutions", "testqueues", "testschedules"]
  verbs: ["get", "list", "watch"]
# Status is the operator's only write to the user's queues and schedules (merge patches).
- apiGroups: ["sluice.dev"]
  resources: ["testexecutions/status", "testqueues/status", "testschedules/status"]
  verbs: ["patch"]
# Schedules create executions (owned by the schedule); Replace cancels one (spec.cancel); history
# limits (queue spec.history, ttlSecondsAfterFinished, schedule history limits) delete finished ones.
- apiGroups: ["sluice.dev"]
  resources: ["testexecutions"]
  verbs: ["create", "patch", "delete"]
# One runner Job per attempt; deleted on cancel (the GC removes the rest via ownerReferences).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Inline sources become a ConfigMap owned by the execution; spec.source.configMap is checked to exist.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create"]
# Runner pods are watched (label-selected) for exit codes, termination messages and pods that never
# start (PodPendingTooLong); never created: the Job controller does.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# Notification webhook URLs are read from the Secret a queue names (never listed or watched).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# An Event on every transition (`kubectl describe tx`).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster-scoped reads and writes the operator needs in every mode (also with watchNamespaces). */}}
{{- define "sluice.operatorClusterRules" -}}
# Environments are cluster-scoped: read, and their status (holders, waiting) written.
- apiGroups: ["sluice.dev"]
  resources: ["testenvironments"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["sluice.dev"]
  resources: ["testenvironments/status"]
  verbs: ["patch"]
# An environment's namespaceSelector is matched against namespace labels.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* The live channel's URLs ("" when off): operator and runners log in as their own ACL users. */}}
{{- define "sluice.redisUrl" -}}
{{- $user := index . 1 -}}{{- with index . 0 -}}
{{- if .Values.redis.enabled -}}
{{- if .Values.redis.url -}}{{ .Values.redis.url }}{{- else -}}
redis://{{ $user }}@{{ include "sluice.fullname" . }}-redis.{{ .Release.Namespace }}.svc:6379
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
