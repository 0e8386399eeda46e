{{/* Names and labels, the usual way (helm create), so selectors stay consistent across objects. */}}
{{- define "review-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "review-bot.fullname" -}}
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

{{/* What every object of the release carries; each adds its app.kubernetes.io/component. */}}
{{- define "review-bot.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "review-bot.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "review-bot.instanceLabels" -}}
app.kubernetes.io/name: {{ include "review-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "review-bot.labels" -}}
{{ include "review-bot.commonLabels" . }}
app.kubernetes.io/component: bot
{{- end }}

{{- define "review-bot.selectorLabels" -}}
{{ include "review-bot.instanceLabels" . }}
app.kubernetes.io/component: bot
{{- end }}

{{- define "review-bot.redisSelectorLabels" -}}
{{ include "review-bot.instanceLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "review-bot.secretName" -}}
{{- default (include "review-bot.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "review-bot.redisName" -}}
{{- printf "%s-redis" (include "review-bot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The container port: PORT from `config`, which the bot listens on. */}}
{{- define "review-bot.port" -}}
{{- include "review-bot.configValue" (list .Values.config.PORT) | default "3000" }}
{{- end }}

{{/*
A config value as the string the bot reads. A number written without quotes in a values file reaches
the template as a float, which Helm would print as 5.24288e+06: whole numbers are printed as integers.
*/}}
{{- define "review-bot.configValue" -}}
{{- $value := index . 0 }}
{{- if kindIs "float64" $value }}
{{- if eq $value (floor $value) }}{{ $value | int64 }}{{ else }}{{ $value }}{{ end }}
{{- else if kindIs "invalid" $value }}
{{- else }}
{{- $value | toString }}
{{- end }}
{{- end }}

{{/*
Whether REDIS_URL is known to be there: the quick-start Redis, a value given here, or an existing Secret
(which must then hold it when there are several replicas: its reference is not optional).
*/}}
{{- define "review-bot.checks" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.redis.enabled) (not .Values.existingSecret) (not .Values.secrets.REDIS_URL) }}
{{- fail "several replicas share their state through Redis: set secrets.REDIS_URL (or existingSecret with a REDIS_URL key), or redis.enabled=true for a quick start, or replicaCount=1" }}
{{- end }}
{{- $grace := include "review-bot.configValue" (list .Values.config.SHUTDOWN_GRACE_SECONDS) | default "25" | int }}
{{- $pause := int .Values.preStopSleepSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $pause $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than preStopSleepSeconds (%d) + config.SHUTDOWN_GRACE_SECONDS (%d), or the kubelet kills the bot before its acknowledged work is done" (int .Values.terminationGracePeriodSeconds) $pause $grace) }}
{{- end }}
{{- end }}
