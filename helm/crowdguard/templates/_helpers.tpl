{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "crowdguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: "<release>-<chart>" unless the release name already contains the chart name. */}}
{{- define "crowdguard.fullname" -}}
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

{{- define "crowdguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "crowdguard.labels" -}}
helm.sh/chart: {{ include "crowdguard.chart" . }}
{{ include "crowdguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end }}

{{/* Labels selecting the worker pods. */}}
{{- define "crowdguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crowdguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crowdguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crowdguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The worker image: the GPU tag when gpu.enabled. */}}
{{- define "crowdguard.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.gpu.enabled }}
{{- $tag = .Values.image.gpuTag | default (printf "%s-gpu" .Chart.AppVersion) }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/* Effective inference device. */}}
{{- define "crowdguard.device" -}}
{{- if .Values.gpu.enabled }}cuda{{ else }}{{ .Values.config.device }}{{ end }}
{{- end }}

{{/* Name of the Secret holding the SASL password ("" when there is none). */}}
{{- define "crowdguard.saslSecretName" -}}
{{- if .Values.kafka.sasl.existingSecret }}
{{- .Values.kafka.sasl.existingSecret }}
{{- else if .Values.kafka.sasl.password }}
{{- include "crowdguard.fullname" . }}
{{- end }}
{{- end }}

{{/* Mount path of kafka.tls.existingSecret. */}}
{{- define "crowdguard.tlsDir" -}}/etc/crowdguard/kafka-tls{{- end }}

{{/* Checks the schema cannot express; rendered (as nothing) by the Deployment. */}}
{{- define "crowdguard.validate" -}}
{{- $v := .Values }}
{{- $parts := int $v.kafka.partitions }}
{{- if and $v.autoscaling.enabled $v.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are mutually exclusive: pick the CPU HPA or the KEDA lag trigger" }}
{{- end }}
{{- if and (not $v.autoscaling.enabled) (not $v.keda.enabled) (gt (int $v.replicaCount) $parts) }}
{{- fail (printf "replicaCount (%d) > kafka.partitions (%d): members beyond the partition count of the consumer group get no partition and sit idle; add partitions first" (int $v.replicaCount) $parts) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.maxReplicas) $parts) }}
{{- fail (printf "autoscaling.maxReplicas (%d) > kafka.partitions (%d)" (int $v.autoscaling.maxReplicas) $parts) }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas > autoscaling.maxReplicas" }}
{{- end }}
{{- if and $v.keda.enabled (gt (int $v.keda.maxReplicaCount) $parts) }}
{{- fail (printf "keda.maxReplicaCount (%d) > kafka.partitions (%d)" (int $v.keda.maxReplicaCount) $parts) }}
{{- end }}
{{- if and $v.keda.enabled (gt (int $v.keda.minReplicaCount) (int $v.keda.maxReplicaCount)) }}
{{- fail "keda.minReplicaCount > keda.maxReplicaCount" }}
{{- end }}
{{- if and (eq $v.config.device "cuda") (not $v.gpu.enabled) }}
{{- fail "config.device=cuda needs gpu.enabled=true (GPU image, nvidia.com/gpu limit, GPU node)" }}
{{- end }}
{{- if and $v.kafka.sasl.mechanism (not (hasPrefix "SASL_" $v.kafka.securityProtocol)) }}
{{- fail (printf "kafka.sasl.mechanism %s needs kafka.securityProtocol SASL_PLAINTEXT or SASL_SSL (is %s)" $v.kafka.sasl.mechanism $v.kafka.securityProtocol) }}
{{- end }}
{{- if and (hasPrefix "SASL_" $v.kafka.securityProtocol) (not $v.kafka.sasl.mechanism) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism" $v.kafka.securityProtocol) }}
{{- end }}
{{- if and $v.kafka.sasl.mechanism (not $v.kafka.sasl.username) }}
{{- fail "kafka.sasl.username is required with kafka.sasl.mechanism" }}
{{- end }}
{{- if and $v.kafka.sasl.mechanism (not (include "crowdguard.saslSecretName" .)) }}
{{- fail "SASL needs a password: kafka.sasl.existingSecret (recommended) or kafka.sasl.password" }}
{{- end }}
{{- if and $v.kafka.tls.existingSecret (not (has $v.kafka.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- fail "kafka.tls.existingSecret needs kafka.securityProtocol SSL or SASL_SSL" }}
{{- end }}
{{- if ne (empty $v.kafka.tls.certKey) (empty $v.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mutual TLS)" }}
{{- end }}
{{- if and $v.kafka.tls.certKey (not $v.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey needs kafka.tls.existingSecret" }}
{{- end }}
{{- if not (regexMatch "^/tmp(/|$)" $v.config.dataDir) }}
{{- fail "config.dataDir must be under /tmp (the only writable path: the root filesystem is read-only)" }}
{{- end }}
{{- end }}

{{/* A number as settings.py parses it: integral values without exponent
     (YAML numbers arrive as float64, which would print 604800 as 6.048e+05). */}}
{{- define "crowdguard.num" -}}
{{- if eq (float64 .) (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- end }}
