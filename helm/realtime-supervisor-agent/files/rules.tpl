groups:
  - name: realtime-supervisor.recording
    rules:
      - record: namespace_provider_model:realtime_supervisor_turns:rate5m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[5m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate5m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[5m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate5m
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate30m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[30m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate30m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[30m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate30m
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate1h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[1h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate1h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[1h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate1h
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate1h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate1h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate1h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate2h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[2h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate2h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[2h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate2h
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate2h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate2h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate2h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate6h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[6h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate6h
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[6h]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate6h
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate6h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate6h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate6h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate1d
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[1d]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate1d
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[1d]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate1d
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate1d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate1d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate1d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_turns:rate3d
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_turns_total{{ printf "{%s}" .selector }}[3d]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stalls:rate3d
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_stalls_total{kind!="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[3d]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_stall_ratio:rate3d
        expr: >-
          (namespace_provider_model:realtime_supervisor_stalls:rate3d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} or namespace_provider_model:realtime_supervisor_turns:rate3d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_turns:rate3d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_recoveries:rate5m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_recoveries_total{{ printf "{%s}" .selector }}[5m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_recovery_failure_ratio:rate5m
        expr: >-
          (sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_recoveries_total{outcome="failure"{{ with .selector }}, {{ . }}{{ end }}}[5m]))
          or namespace_provider_model:realtime_supervisor_recoveries:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_recoveries:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_recoveries:rate30m
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_recoveries_total{{ printf "{%s}" .selector }}[30m]))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model:realtime_supervisor_recovery_failure_ratio:rate30m
        expr: >-
          (sum by ({{ join ", " .aggregationLabels }}, provider, model) (rate(realtime_supervisor_recoveries_total{outcome="failure"{{ with .selector }}, {{ . }}{{ end }}}[30m]))
          or namespace_provider_model:realtime_supervisor_recoveries:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 0)
          / (namespace_provider_model:realtime_supervisor_recoveries:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > 0)
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
      - record: namespace_provider_model_action:realtime_supervisor_recovery_seconds:p95_30m
        expr: >-
          histogram_quantile(0.95, sum by ({{ join ", " .aggregationLabels }}, provider, model, action, le)
          (rate(realtime_supervisor_recovery_seconds_bucket{{ printf "{%s}" .selector }}[30m])))
{{- with .scope }}
        labels:
          rules_scope: {{ . | quote }}
{{- end }}
  - name: realtime-supervisor.alerts
    rules:
{{- if and .alerts.RealtimeSupervisorStallBudgetBurn.enabled .alerts.RealtimeSupervisorStallBudgetBurn.critical }}
      - alert: RealtimeSupervisorStallBudgetBurn
        expr: >-
          (
          (
            namespace_provider_model:realtime_supervisor_stall_ratio:rate1h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (14.4 * (1 - {{ .stallObjective }}))
            and on ({{ join ", " .aggregationLabels }}, provider, model)
            namespace_provider_model:realtime_supervisor_stall_ratio:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (14.4 * (1 - {{ .stallObjective }}))
          )
          or
          (
            namespace_provider_model:realtime_supervisor_stall_ratio:rate6h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (6 * (1 - {{ .stallObjective }}))
            and on ({{ join ", " .aggregationLabels }}, provider, model)
            namespace_provider_model:realtime_supervisor_stall_ratio:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (6 * (1 - {{ .stallObjective }}))
          )
          )
          and on ({{ join ", " .aggregationLabels }}, provider, model)
          namespace_provider_model:realtime_supervisor_turns:rate5m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .minTurnRate }}
        for: {{ .alerts.RealtimeSupervisorStallBudgetBurn.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorStallBudgetBurn.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Stalls on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} burn the error budget fast"
          description: >-
            {{`{{`}} $value | humanizePercentage {{`}}`}} of user turns on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} stalled (callers heard silence after speaking), burning the stall budget at 14.4x or 6x the objective's rate. Check the Stalls row for the kind and the Recoveries row for whether the supervisor brings the calls back.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorstallbudgetburn
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorStallBudgetBurn.enabled .alerts.RealtimeSupervisorStallBudgetBurn.warning }}
      - alert: RealtimeSupervisorStallBudgetBurn
        expr: >-
          (
          (
            namespace_provider_model:realtime_supervisor_stall_ratio:rate1d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (3 * (1 - {{ .stallObjective }}))
            and on ({{ join ", " .aggregationLabels }}, provider, model)
            namespace_provider_model:realtime_supervisor_stall_ratio:rate2h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (3 * (1 - {{ .stallObjective }}))
          )
          or
          (
            namespace_provider_model:realtime_supervisor_stall_ratio:rate3d{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (1 * (1 - {{ .stallObjective }}))
            and on ({{ join ", " .aggregationLabels }}, provider, model)
            namespace_provider_model:realtime_supervisor_stall_ratio:rate6h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > (1 * (1 - {{ .stallObjective }}))
          )
          )
          and on ({{ join ", " .aggregationLabels }}, provider, model)
          namespace_provider_model:realtime_supervisor_turns:rate2h{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .minTurnRate }}
        for: {{ .alerts.RealtimeSupervisorStallBudgetBurn.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorStallBudgetBurn.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Stalls on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} burn the error budget steadily"
          description: >-
            {{`{{`}} $value | humanizePercentage {{`}}`}} of user turns on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} stalled (callers heard silence after speaking), burning the stall budget at 3x or 1x the objective's rate. Check the Stalls row for the kind and the Recoveries row for whether the supervisor brings the calls back.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorstallbudgetburn
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorRecoveryFailing.enabled .alerts.RealtimeSupervisorRecoveryFailing.warning }}
      - alert: RealtimeSupervisorRecoveryFailing
        expr: >-
          namespace_provider_model:realtime_supervisor_recovery_failure_ratio:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .alerts.RealtimeSupervisorRecoveryFailing.warning.threshold }}
          and on ({{ join ", " .aggregationLabels }}, provider, model)
          namespace_provider_model:realtime_supervisor_recoveries:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 1800 >= {{ .minRecoveries }}
        for: {{ .alerts.RealtimeSupervisorRecoveryFailing.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorRecoveryFailing.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Stall recoveries on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} mostly fail"
          description: >-
            {{`{{`}} $value | humanizePercentage {{`}}`}} of recovery attempts (reissue, reconnect) on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} failed over the last 30 minutes: stalled callers stay silent until the ladder escalates.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorrecoveryfailing
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorRecoveryFailing.enabled .alerts.RealtimeSupervisorRecoveryFailing.critical }}
      - alert: RealtimeSupervisorRecoveryFailing
        expr: >-
          namespace_provider_model:realtime_supervisor_recovery_failure_ratio:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .alerts.RealtimeSupervisorRecoveryFailing.critical.threshold }}
          and on ({{ join ", " .aggregationLabels }}, provider, model)
          namespace_provider_model:realtime_supervisor_recoveries:rate30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} * 1800 >= {{ .minRecoveries }}
        for: {{ .alerts.RealtimeSupervisorRecoveryFailing.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorRecoveryFailing.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Stall recoveries on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} mostly fail"
          description: >-
            {{`{{`}} $value | humanizePercentage {{`}}`}} of recovery attempts (reissue, reconnect) on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} failed over the last 30 minutes: stalled callers stay silent until the ladder escalates.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorrecoveryfailing
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorRecoveryTimeHigh.enabled .alerts.RealtimeSupervisorRecoveryTimeHigh.warning }}
      - alert: RealtimeSupervisorRecoveryTimeHigh
        expr: >-
          namespace_provider_model_action:realtime_supervisor_recovery_seconds:p95_30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .alerts.RealtimeSupervisorRecoveryTimeHigh.warning.threshold }}
          and on ({{ join ", " .aggregationLabels }}, provider, model, action)
          sum by ({{ join ", " .aggregationLabels }}, provider, model, action) (increase(realtime_supervisor_recovery_seconds_count{{ printf "{%s}" .selector }}[30m])) >= {{ .minRecoveries }}
        for: {{ .alerts.RealtimeSupervisorRecoveryTimeHigh.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorRecoveryTimeHigh.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Recovering a stalled call ({{`{{`}} $labels.action {{`}}`}}) takes too long"
          description: >-
            The 95th percentile time from stall detection to the agent's first audio after a {{`{{`}} $labels.action {{`}}`}} on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} is {{`{{`}} $value | humanizeDuration {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} (last 30 minutes); callers wait that long on top of the detection timeout.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorrecoverytimehigh
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorRecoveryTimeHigh.enabled .alerts.RealtimeSupervisorRecoveryTimeHigh.critical }}
      - alert: RealtimeSupervisorRecoveryTimeHigh
        expr: >-
          namespace_provider_model_action:realtime_supervisor_recovery_seconds:p95_30m{{ with .scope }}{rules_scope="{{ . }}"}{{ end }} > {{ .alerts.RealtimeSupervisorRecoveryTimeHigh.critical.threshold }}
          and on ({{ join ", " .aggregationLabels }}, provider, model, action)
          sum by ({{ join ", " .aggregationLabels }}, provider, model, action) (increase(realtime_supervisor_recovery_seconds_count{{ printf "{%s}" .selector }}[30m])) >= {{ .minRecoveries }}
        for: {{ .alerts.RealtimeSupervisorRecoveryTimeHigh.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorRecoveryTimeHigh.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Recovering a stalled call ({{`{{`}} $labels.action {{`}}`}}) takes too long"
          description: >-
            The 95th percentile time from stall detection to the agent's first audio after a {{`{{`}} $labels.action {{`}}`}} on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} is {{`{{`}} $value | humanizeDuration {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} (last 30 minutes); callers wait that long on top of the detection timeout.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorrecoverytimehigh
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorEscalations.enabled .alerts.RealtimeSupervisorEscalations.warning }}
      - alert: RealtimeSupervisorEscalations
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model, reason) (increase(realtime_supervisor_escalations_total{{ printf "{%s}" .selector }}[30m])) > {{ .alerts.RealtimeSupervisorEscalations.warning.threshold }}
        for: {{ .alerts.RealtimeSupervisorEscalations.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorEscalations.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "The supervisor gave up on calls ({{`{{`}} $labels.reason {{`}}`}})"
          description: >-
            Escalations ({{`{{`}} $labels.reason {{`}}`}}) on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. Each is a call the supervisor could not bring back and handed to the escalation hook.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorescalations
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorEscalations.enabled .alerts.RealtimeSupervisorEscalations.critical }}
      - alert: RealtimeSupervisorEscalations
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model, reason) (increase(realtime_supervisor_escalations_total{{ printf "{%s}" .selector }}[30m])) > {{ .alerts.RealtimeSupervisorEscalations.critical.threshold }}
        for: {{ .alerts.RealtimeSupervisorEscalations.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorEscalations.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "The supervisor gave up on calls ({{`{{`}} $labels.reason {{`}}`}})"
          description: >-
            Escalations ({{`{{`}} $labels.reason {{`}}`}}) on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. Each is a call the supervisor could not bring back and handed to the escalation hook.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorescalations
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorReconnectStorm.enabled .alerts.RealtimeSupervisorReconnectStorm.warning }}
      - alert: RealtimeSupervisorReconnectStorm
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (increase(realtime_supervisor_stalls_total{kind="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[30m])) > {{ .alerts.RealtimeSupervisorReconnectStorm.warning.threshold }}
        for: {{ .alerts.RealtimeSupervisorReconnectStorm.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorReconnectStorm.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Sessions on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} reconnect in a loop"
          description: >-
            Reconnect storms on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. Sessions reconnected to the realtime API repeatedly and were escalated; usually the provider (outage, quota) rather than the agent.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorreconnectstorm
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorReconnectStorm.enabled .alerts.RealtimeSupervisorReconnectStorm.critical }}
      - alert: RealtimeSupervisorReconnectStorm
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, provider, model) (increase(realtime_supervisor_stalls_total{kind="reconnect_storm"{{ with .selector }}, {{ . }}{{ end }}}[30m])) > {{ .alerts.RealtimeSupervisorReconnectStorm.critical.threshold }}
        for: {{ .alerts.RealtimeSupervisorReconnectStorm.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorReconnectStorm.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Sessions on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} reconnect in a loop"
          description: >-
            Reconnect storms on {{`{{`}} $labels.provider {{`}}`}}/{{`{{`}} $labels.model {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. Sessions reconnected to the realtime API repeatedly and were escalated; usually the provider (outage, quota) rather than the agent.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorreconnectstorm
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorWatchdogErrors.enabled .alerts.RealtimeSupervisorWatchdogErrors.warning }}
      - alert: RealtimeSupervisorWatchdogErrors
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, pod) (increase(realtime_supervisor_watchdog_errors_total{{ printf "{%s}" .selector }}[30m])) > {{ .alerts.RealtimeSupervisorWatchdogErrors.warning.threshold }}
        for: {{ .alerts.RealtimeSupervisorWatchdogErrors.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorWatchdogErrors.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "The watchdog on {{`{{`}} $labels.pod {{`}}`}} hit internal errors"
          description: >-
            Internal watchdog errors on {{`{{`}} $labels.pod {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. The watchdog contains them to protect the call, but stalls may go undetected or unrecovered meanwhile.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorwatchdogerrors
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorWatchdogErrors.enabled .alerts.RealtimeSupervisorWatchdogErrors.critical }}
      - alert: RealtimeSupervisorWatchdogErrors
        expr: >-
          sum by ({{ join ", " .aggregationLabels }}, pod) (increase(realtime_supervisor_watchdog_errors_total{{ printf "{%s}" .selector }}[30m])) > {{ .alerts.RealtimeSupervisorWatchdogErrors.critical.threshold }}
        for: {{ .alerts.RealtimeSupervisorWatchdogErrors.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorWatchdogErrors.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "The watchdog on {{`{{`}} $labels.pod {{`}}`}} hit internal errors"
          description: >-
            Internal watchdog errors on {{`{{`}} $labels.pod {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} in the last 30 minutes: {{`{{`}} $value | humanize {{`}}`}}. The watchdog contains them to protect the call, but stalls may go undetected or unrecovered meanwhile.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorwatchdogerrors
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorWorkerDrainingTooLong.enabled .alerts.RealtimeSupervisorWorkerDrainingTooLong.warning }}
      - alert: RealtimeSupervisorWorkerDrainingTooLong
        expr: >-
          max by ({{ join ", " .aggregationLabels }}, pod) (realtime_supervisor_draining{{ printf "{%s}" .selector }}) == 1
        for: {{ .alerts.RealtimeSupervisorWorkerDrainingTooLong.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorWorkerDrainingTooLong.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Worker {{`{{`}} $labels.pod {{`}}`}} has been draining for a long time"
          description: >-
            Worker {{`{{`}} $labels.pod {{`}}`}} in {{`{{`}} $labels.namespace {{`}}`}} has been draining (taking no new calls) after too many escalations in the drain window; capacity is reduced until it restarts.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorworkerdrainingtoolong
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorWorkerFull.enabled .alerts.RealtimeSupervisorWorkerFull.warning }}
      - alert: RealtimeSupervisorWorkerFull
        expr: >-
          min by ({{ join ", " .aggregationLabels }}) (lk_agents_worker_load{{ printf "{%s}" .selector }}) > {{ .alerts.RealtimeSupervisorWorkerFull.warning.threshold }}
        for: {{ .alerts.RealtimeSupervisorWorkerFull.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorWorkerFull.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Every agent worker in {{`{{`}} $labels.namespace {{`}}`}} is (nearly) full"
          description: >-
            The least loaded worker in {{`{{`}} $labels.namespace {{`}}`}} reports a load of {{`{{`}} $value | humanizePercentage {{`}}`}} (the highest of CPU, memory against its limit and calls against AGENT_MAX_CALLS). At livekit's threshold (70%) LiveKit dispatches no new call to a worker: add workers (autoscaling.maxReplicas) before callers wait.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorworkerfull
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorWorkerFull.enabled .alerts.RealtimeSupervisorWorkerFull.critical }}
      - alert: RealtimeSupervisorWorkerFull
        expr: >-
          min by ({{ join ", " .aggregationLabels }}) (lk_agents_worker_load{{ printf "{%s}" .selector }}) > {{ .alerts.RealtimeSupervisorWorkerFull.critical.threshold }}
        for: {{ .alerts.RealtimeSupervisorWorkerFull.critical.for }}
        labels:
          severity: critical
{{- range $k, $v := .alerts.RealtimeSupervisorWorkerFull.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Every agent worker in {{`{{`}} $labels.namespace {{`}}`}} is (nearly) full"
          description: >-
            The least loaded worker in {{`{{`}} $labels.namespace {{`}}`}} reports a load of {{`{{`}} $value | humanizePercentage {{`}}`}} (the highest of CPU, memory against its limit and calls against AGENT_MAX_CALLS). At livekit's threshold (70%) LiveKit dispatches no new call to a worker: add workers (autoscaling.maxReplicas) before callers wait.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisorworkerfull
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor?var-namespace={{`{{`}} $labels.namespace {{`}}`}}"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorMetricsAbsent.enabled .alerts.RealtimeSupervisorMetricsAbsent.warning }}
      - alert: RealtimeSupervisorMetricsAbsent
        expr: >-
          absent(up{{ printf "{%s}" .selector }} == 1)
          and on ()
          absent(realtime_supervisor_build_info{{ printf "{%s}" .selector }})
        for: {{ .alerts.RealtimeSupervisorMetricsAbsent.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorMetricsAbsent.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "Prometheus is not scraping realtime-supervisor"
          description: >-
            No realtime-supervisor scrape target matching the rules' selector is up and no realtime_supervisor_build_info series exists: dead calls are neither measured nor alerted on.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisormetricsabsent
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor"
{{- end }}
{{- end }}
{{- if and .alerts.RealtimeSupervisorMetricsMissingFromTarget.enabled .alerts.RealtimeSupervisorMetricsMissingFromTarget.warning }}
      - alert: RealtimeSupervisorMetricsMissingFromTarget
        expr: >-
          absent(realtime_supervisor_build_info{{ printf "{%s}" .selector }})
          unless on ()
          absent(up{{ printf "{%s}" .selector }} == 1)
        for: {{ .alerts.RealtimeSupervisorMetricsMissingFromTarget.warning.for }}
        labels:
          severity: warning
{{- range $k, $v := .alerts.RealtimeSupervisorMetricsMissingFromTarget.labels }}
          {{ $k }}: {{ $v | quote }}
{{- end }}
        annotations:
          summary: "realtime-supervisor targets are scraped but export none of our metrics"
          description: >-
            A realtime-supervisor scrape target is up, yet no realtime_supervisor_build_info series exists: the scrape reaches the wrong port or path, or the metrics endpoint is broken. Dead calls are not measured meanwhile.
          runbook_url: {{ .runbookBaseUrl }}#realtimesupervisormetricsmissingfromtarget
{{- with .grafanaUrl }}
          dashboard_url: "{{ . }}/d/realtime-supervisor"
{{- end }}
{{- end }}
