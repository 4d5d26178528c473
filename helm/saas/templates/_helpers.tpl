{{/* The chart's name, or nameOverride. */}}
{{- define "saas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: fullnameOverride, or RELEASE-NAME (RELEASE alone when it holds NAME). */}}
{{- define "saas.fullname" -}}
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

{{- define "saas.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: include "saas.selectorLabels" (dict "root" $ "component" "web") */}}
{{- define "saas.selectorLabels" -}}
app.kubernetes.io/name: {{ include "saas.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component: include "saas.labels" (dict "root" $ "component" "web") */}}
{{- define "saas.labels" -}}
helm.sh/chart: {{ include "saas.chart" .root }}
{{ include "saas.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "saas.name" .root }}
{{- end -}}

{{- define "saas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "saas.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "saas.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "saas.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "saas.configMapName" -}}
{{- printf "%s-config" (include "saas.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "saas.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Annotations of the Secret and ConfigMap the chart creates: the migrations Job runs as a
pre-install/pre-upgrade hook, before ordinary resources exist, so they are hooks too (created
first, by weight, and re-created on each upgrade).
*/}}
{{- define "saas.configHookAnnotations" -}}
{{- if .Values.migrations.enabled -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
{{- end -}}

{{/* Pod metadata of one component: include "saas.podMetadata" (dict "root" $ "component" "web") */}}
{{- define "saas.podMetadata" -}}
labels:
  {{- include "saas.selectorLabels" . | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  # Changed settings roll the pods.
  checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
  {{- if not .root.Values.secrets.existingSecret }}
  checksum/secrets: {{ include (print .root.Template.BasePath "/secret.yaml") .root | sha256sum }}
  {{- end }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* The pod-level part every pod shares: pull secrets, security context, scheduling. */}}
{{- define "saas.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  {{- with .Values.securityContext.runAsUser }}
  runAsUser: {{ . | int }}
  {{- end }}
  {{- if not (kindIs "invalid" .Values.securityContext.runAsGroup) }}
  runAsGroup: {{ .Values.securityContext.runAsGroup | int }}
  {{- end }}
  {{- if not (kindIs "invalid" .Values.securityContext.fsGroup) }}
  fsGroup: {{ .Values.securityContext.fsGroup | int }}
  {{- end }}
  seccompProfile:
    type: RuntimeDefault
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpDir.sizeLimit }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The container-level part every container shares: image, settings, security context, /tmp. */}}
{{- define "saas.containerCommon" -}}
image: {{ include "saas.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "saas.configMapName" . }}
  - secretRef:
      name: {{ include "saas.secretName" . }}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}
