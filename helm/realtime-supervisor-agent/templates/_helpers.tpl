{{/* The chart's name, or nameOverride. */}}
{{- define "rsa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: fullnameOverride, else RELEASE-CHART unless the release name already
contains the chart name. 63 characters: a DNS label.
*/}}
{{- define "rsa.fullname" -}}
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

{{- define "rsa.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the release's lifetime (a Deployment's selector is immutable). */}}
{{- define "rsa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rsa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The standard labels. Call with (dict "ctx" $ "component" "worker"): the component says which part
of the deployment an object belongs to (worker, metrics, alerting, dashboard).
*/}}
{{- define "rsa.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "rsa.chart" $ctx }}
{{ include "rsa.selectorLabels" $ctx }}
app.kubernetes.io/version: {{ $ctx.Values.image.tag | default $ctx.Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: realtime-supervisor
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- end }}

{{- define "rsa.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rsa.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rsa.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret every credential comes from: secrets.existingSecret, else the release's full name. */}}
{{- define "rsa.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "rsa.fullname" .) }}
{{- end }}

{{/* The pods the monitor scrapes: monitor.selector, else this release's worker pods. */}}
{{- define "rsa.monitorSelector" -}}
{{- if .Values.monitor.selector }}
{{- toYaml .Values.monitor.selector }}
{{- else if eq .Values.mode "monitoring" }}
{{- fail "mode=monitoring needs monitor.selector: the matchLabels of your agent's pods (e.g. {app: my-agent})" }}
{{- else }}
{{- include "rsa.selectorLabels" . }}
{{- end }}
{{- end }}

{{/* A container's securityContext must not be privileged, escalate or add capabilities. */}}
{{- define "rsa.checkContainer" -}}
{{- $ctx := .container.securityContext | default dict }}
{{- if or $ctx.privileged $ctx.allowPrivilegeEscalation }}
{{- fail (printf "%s %s: privileged containers and privilege escalation are refused" .where .container.name) }}
{{- end }}
{{- if and $ctx.capabilities $ctx.capabilities.add }}
{{- fail (printf "%s %s: added capabilities (%s) are refused" .where .container.name (join ", " $ctx.capabilities.add)) }}
{{- end }}
{{- end }}

{{/*
The worker's environment, as a YAML list. Credentials come only from the existing Secret. Plain
settings that are null or "" are left out, so the application applies its own default (it also
treats "" as unset); lists are joined with commas.
*/}}
{{- define "rsa.envList" -}}
{{- $secret := include "rsa.secretName" . }}
{{- $agent := .Values.agent }}
{{- $keys := .Values.secrets.keys }}
{{- $env := list }}
{{- $secretVars := list (list "LIVEKIT_URL" $keys.livekitUrl false) (list "LIVEKIT_API_KEY" $keys.livekitApiKey false) (list "LIVEKIT_API_SECRET" $keys.livekitApiSecret false) }}
{{- $plain := list }}
{{- if eq $agent.provider "openai" }}
{{- $secretVars = append $secretVars (list "OPENAI_API_KEY" $keys.openaiApiKey false) }}
{{- else }}
{{- /* Both optional: a Secret may hold an API key, an Entra ID token, or both. */}}
{{- $secretVars = append $secretVars (list "AZURE_OPENAI_API_KEY" $keys.azureApiKey true) }}
{{- $secretVars = append $secretVars (list "AZURE_OPENAI_AD_TOKEN" $keys.azureAdToken true) }}
{{- $plain = concat $plain (list (list "AZURE_OPENAI_ENDPOINT" $agent.azure.endpoint) (list "AZURE_OPENAI_DEPLOYMENT" $agent.azure.deployment) (list "OPENAI_API_VERSION" $agent.azure.apiVersion)) }}
{{- end }}
{{- $fb := $agent.fallback }}
{{- if $fb.provider }}
{{- /* The fallback's own key; "" = the primary's key for its provider (checked in deployment.yaml). */}}
{{- if $keys.fallbackApiKey }}
{{- $secretVars = append $secretVars (list "AGENT_FALLBACK_API_KEY" $keys.fallbackApiKey false) }}
{{- end }}
{{- $plain = concat $plain (list (list "AGENT_FALLBACK_PROVIDER" $fb.provider) (list "AGENT_FALLBACK_MODEL" $fb.model) (list "AGENT_FALLBACK_AZURE_ENDPOINT" $fb.azure.endpoint) (list "AGENT_FALLBACK_AZURE_DEPLOYMENT" $fb.azure.deployment) (list "AGENT_FALLBACK_API_VERSION" $fb.azure.apiVersion)) }}
{{- end }}
{{- range $secretVars }}
{{- $name := index . 0 }}{{ $key := index . 1 }}{{ $optional := index . 2 }}
{{- if $key }}
{{- $ref := dict "name" $secret "key" $key }}
{{- if $optional }}{{ $_ := set $ref "optional" true }}{{ end }}
{{- $env = append $env (dict "name" $name "valueFrom" (dict "secretKeyRef" $ref)) }}
{{- else if not $optional }}
{{- fail (printf "secrets.keys: the key for %s must not be empty" $name) }}
{{- end }}
{{- end }}
{{- $w := .Values.watchdog }}
{{- $ladder := $w.ladder }}
{{- if kindIs "slice" $ladder }}
{{- /* An empty ladder is spelled "none": "" would mean unset, i.e. the default ladder. */}}
{{- $ladder = ternary "none" (join "," $ladder) (empty $ladder) }}
{{- end }}
{{- $s := .Values.supervisor }}
{{- $plain = concat $plain (list
  (list "AGENT_PROVIDER" $agent.provider)
  (list "AGENT_NAME" $agent.name)
  (list "AGENT_MODEL" $agent.model)
  (list "AGENT_VOICE" $agent.voice)
  (list "AGENT_MODALITIES" $agent.modalities)
  (list "AGENT_INSTRUCTIONS" $agent.instructions)
  (list "AGENT_ARCHITECTURE" $agent.architecture)
  (list "AGENT_TRANSCRIPTION_MODEL" $agent.transcriptionModel)
  (list "AGENT_NOISE_REDUCTION" $agent.noiseReduction)
  (list "AGENT_TURN_DETECTION" $agent.turnDetection)
  (list "AGENT_VAD_THRESHOLD" $agent.serverVad.threshold)
  (list "AGENT_VAD_PREFIX_PADDING_MS" $agent.serverVad.prefixPaddingMs)
  (list "AGENT_VAD_SILENCE_DURATION_MS" $agent.serverVad.silenceDurationMs)
  (list "AGENT_SEMANTIC_EAGERNESS" $agent.semanticVad.eagerness)
  (list "AGENT_MAX_CALLS" $agent.maxCalls)
  (list "AGENT_HOLD_CUE" $agent.holdCue)
  (list "REALTIME_SUPERVISOR_ENABLED" $w.enabled)
  (list "REALTIME_SUPERVISOR_REPLY_TIMEOUT" $w.replyTimeout)
  (list "REALTIME_SUPERVISOR_AUDIO_GAP_TIMEOUT" $w.audioGapTimeout)
  (list "REALTIME_SUPERVISOR_WARNING_GRACE" $w.warningGrace)
  (list "REALTIME_SUPERVISOR_RECOVERY_TIMEOUT" $w.recoveryTimeout)
  (list "REALTIME_SUPERVISOR_ACK_TIMEOUT" $w.ackTimeout)
  (list "REALTIME_SUPERVISOR_PROGRESS_TIMEOUT" $w.progressTimeout)
  (list "REALTIME_SUPERVISOR_BUDGET_MAX_RECOVERIES" $w.budgetMaxRecoveries)
  (list "REALTIME_SUPERVISOR_BUDGET_WINDOW" $w.budgetWindow)
  (list "REALTIME_SUPERVISOR_STORM_RECONNECTS" $w.stormReconnects)
  (list "REALTIME_SUPERVISOR_STORM_WINDOW" $w.stormWindow)
  (list "REALTIME_SUPERVISOR_LADDER" $ladder)
  (list "REALTIME_SUPERVISOR_RECONNECT_ATTEMPTS" $w.reconnectAttempts)
  (list "REALTIME_SUPERVISOR_RECONNECT_BACKOFF_MAX" $w.reconnectBackoffMax)
  (list "REALTIME_SUPERVISOR_LEARNED_ENABLED" $w.learnedEnabled)
  (list "REALTIME_SUPERVISOR_LEARNED_REPLY" $w.learnedReply)
  (list "REALTIME_SUPERVISOR_LEARNED_MARGIN" $w.learnedMargin)
  (list "REALTIME_SUPERVISOR_LEARNED_FLOOR" $w.learnedFloor)
  (list "REALTIME_SUPERVISOR_LEARNED_WINDOW" $w.learnedWindow)
  (list "REALTIME_SUPERVISOR_LEARNED_MIN_SAMPLES" $w.learnedMinSamples)
  (list "REALTIME_SUPERVISOR_HTTP_HOST" $s.httpHost)
  (list "REALTIME_SUPERVISOR_HTTP_PORT" $s.httpPort)
  (list "REALTIME_SUPERVISOR_DRAIN_ESCALATIONS" $s.drainEscalations)
  (list "REALTIME_SUPERVISOR_DRAIN_WINDOW" $s.drainWindow)
  (list "REALTIME_SUPERVISOR_LOG_LEVEL" $s.logLevel)
  (list "PROMETHEUS_MULTIPROC_DIR" .Values.volumes.metrics.mountPath)
) }}
{{- range $plain }}
{{- $name := index . 0 }}{{ $v := index . 1 }}
{{- if kindIs "slice" $v }}{{ $v = join "," $v }}{{ end }}
{{- if and (not (kindIs "invalid" $v)) (ne (toString $v) "") }}
{{- $env = append $env (dict "name" $name "value" (toString $v)) }}
{{- end }}
{{- end }}
{{- if .Values.livekit.numCpusFromRequests }}
{{- $env = append $env (dict "name" "NUM_CPUS" "valueFrom" (dict "resourceFieldRef" (dict "containerName" "agent" "resource" "requests.cpu" "divisor" "1"))) }}
{{- end }}
{{- range $i, $e := .Values.extraEnv }}
{{- if and (hasKey $e "value") (regexMatch "(?i)(key|secret|token|passw|credential)" $e.name) }}
{{- fail (printf "extraEnv[%d] %s: a literal value for a credential-like name is refused; use valueFrom.secretKeyRef (or envFrom a Secret)" $i $e.name) }}
{{- end }}
{{- end }}
{{- $env = concat $env .Values.extraEnv }}
{{- toYaml $env }}
{{- end }}
