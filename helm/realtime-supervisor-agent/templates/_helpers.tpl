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

{{/* The Secret every credential comes from; rendering fails without it. */}}
{{- define "rsa.secretName" -}}
{{- required "secrets.existingSecret is required: the name of a Secret holding LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET and the model provider's key (see README, Deploying on Kubernetes)" .Values.secrets.existingSecret }}
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
{{- $s := .Values.service }}
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
  (list "REALTIME_SUPERVISOR_HTTP_HOST" $s.httpHost)
  (list "REALTIME_SUPERVISOR_HTTP_PORT" $s.httpPort)
  (list "REALTIME_SUPERVISOR_DRAIN_ESCALATIONS" $s.drainEscalations)
  (list "REALTIME_SUPERVISOR_DRAIN_WINDOW" $s.drainWindow)
  (list "REALTIME_SUPERVISOR_LOG_FORMAT" $s.logFormat)
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
{{- $env = concat $env .Values.extraEnv }}
{{- toYaml $env }}
{{- end }}

{{/*
The PrometheusRule spec: files/rules.yaml verbatim, or with the prometheusRule.thresholds that
differ from the file's defaults (files/thresholds.json) substituted in their alert.
*/}}
{{- define "rsa.rulesSpec" -}}
{{- $raw := .Files.Get "files/rules.yaml" }}
{{- if not $raw }}{{ fail "files/rules.yaml is missing from the chart: run scripts/sync-chart-files.py" }}{{ end }}
{{- $table := .Files.Get "files/thresholds.json" | fromJson }}
{{- $values := .Values.prometheusRule.thresholds | default dict }}
{{- range $alert, $_ := $values }}
{{- if not (hasKey $table $alert) }}
{{- fail (printf "prometheusRule.thresholds.%s: no such alert in dashboards/rules.yaml's THRESHOLDS table" $alert) }}
{{- end }}
{{- end }}
{{- $changes := dict }}
{{- range $alert, $keys := $table }}
{{- $set := get $values $alert | default dict }}
{{- range $key, $_ := $set }}
{{- if not (hasKey $keys $key) }}
{{- fail (printf "prometheusRule.thresholds.%s.%s: no such key; accepted: %s" $alert $key (keys $keys | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- range $key, $spec := $keys }}
{{- if hasKey $set $key }}
{{- $v := get $set $key }}
{{- $differs := false }}
{{- if eq $spec.place "for" }}
{{- $differs = ne (toString $v) $spec.default }}
{{- else }}
{{- $differs = ne (float64 $v) (float64 $spec.default) }}
{{- end }}
{{- if $differs }}
{{- $alertChanges := get $changes $alert | default dict }}
{{- $_ := set $alertChanges $key (dict "place" $spec.place "default" $spec.default "value" (toString $v)) }}
{{- $_ := set $changes $alert $alertChanges }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $changes }}
{{- $raw | trimSuffix "\n" }}
{{- else }}
{{- $doc := fromYaml $raw }}
{{- range $group := $doc.groups }}
{{- range $rule := $group.rules }}
{{- if and $rule.alert (hasKey $changes $rule.alert) }}
{{- range $key, $c := get $changes $rule.alert }}
{{- if eq $c.place "for" }}
{{- $_ := set $rule "for" $c.value }}
{{- else }}
{{- $pattern := printf "([<>]=?|==|!=)(\\s*)%s(\\s|$)" (regexQuoteMeta $c.default) }}
{{- if ne (len (regexFindAll $pattern $rule.expr -1)) 1 }}
{{- fail (printf "prometheusRule.thresholds.%s.%s: the literal %s is not in the alert's expr exactly once; re-run scripts/sync-chart-files.py" $rule.alert $key $c.default) }}
{{- end }}
{{- $_ := set $rule "expr" (regexReplaceAll $pattern $rule.expr (printf "${1}${2}%s${3}" $c.value)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $doc }}
{{- end }}
{{- end }}
