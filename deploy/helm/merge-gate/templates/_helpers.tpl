{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "merge-gate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "merge-gate.fullname" -}}
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

{{- define "merge-gate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "merge-gate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels for one component: receiver or worker. */}}
{{- define "merge-gate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "merge-gate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "merge-gate.image" -}}
{{- $repository := required "image.repository is required: build deploy/Dockerfile and push it to a registry you control, then set image.repository (docs/operations.md)" .Values.image.repository -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "merge-gate.claimName" -}}
{{- default (printf "%s-data" (include "merge-gate.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* Pod annotations telling Prometheus where this pod's /metrics is. */}}
{{- define "merge-gate.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ . | quote }}
prometheus.io/path: /metrics
{{- end }}

{{- define "merge-gate.secretName" -}}
{{- default (include "merge-gate.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* Environment shared by receiver and worker (docs/operations.md lists each). */}}
{{- define "merge-gate.env" -}}
- name: GATE_APP_ID
  value: {{ required "github.appId is required (gate setup printed it)" .Values.github.appId | quote }}
- name: GATE_GITHUB_API_URL
  value: {{ .Values.github.apiUrl | quote }}
- name: GATE_PUBLIC_URL
  value: {{ required "github.publicUrl is required (where GitHub sends webhooks)" .Values.github.publicUrl | quote }}
- name: GATE_DATA_DIR
  value: /var/lib/merge-gate
- name: GATE_PRIVATE_KEY_FILE
  value: /etc/merge-gate/private-key.pem
- name: GATE_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "merge-gate.secretName" . }}
      key: webhook-secret
{{- if .Values.github.clientId }}
- name: GATE_GITHUB_CLIENT_ID
  value: {{ .Values.github.clientId | quote }}
- name: GATE_GITHUB_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "merge-gate.secretName" . }}
      key: oauth-client-secret
{{- end }}
{{- if .Values.secret.hasSigningKey }}
- name: GATE_SIGNING_KEY_FILE
  value: /etc/merge-gate/signing-key.pem
{{- end }}
- name: GATE_REDIS_URL
{{- if .Values.redis.existingSecret }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else }}
  value: {{ required "redis.url (or redis.existingSecret) is required: replicas share their queue through Redis" .Values.redis.url | quote }}
{{- end }}
{{- end }}

{{/* The pod spec shared by both Deployments; pass (dict "root" $ "component" "..." "args" list "values" ...). */}}
{{- define "merge-gate.podSpec" -}}
{{- $root := .root -}}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .component }}
    image: {{ include "merge-gate.image" $root | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      {{- include "merge-gate.env" $root | nindent 6 }}
    {{- if .http }}
    ports:
      - name: http
        containerPort: {{ $root.Values.containerPort }}
        protocol: TCP
    livenessProbe:
      httpGet:
        path: /healthz
        port: http
      initialDelaySeconds: 5
      periodSeconds: 10
      timeoutSeconds: 3
      failureThreshold: 3
    readinessProbe:
      httpGet:
        path: /readyz
        port: http
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 2
    {{- else }}
    {{- /* The worker: /metrics and /healthz (fails once a worker task died) on their own port. */}}
    ports:
      - name: metrics
        containerPort: {{ $root.Values.metrics.workerPort }}
        protocol: TCP
    livenessProbe:
      httpGet:
        path: /healthz
        port: metrics
      initialDelaySeconds: 5
      periodSeconds: 10
      timeoutSeconds: 3
      failureThreshold: 3
    {{- end }}
    resources:
      {{- toYaml .values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: credentials
        mountPath: /etc/merge-gate
        readOnly: true
      - name: data
        mountPath: /var/lib/merge-gate
      - name: tmp
        mountPath: /tmp
volumes:
  - name: credentials
    secret:
      secretName: {{ include "merge-gate.secretName" $root }}
      defaultMode: 0400
      items:
        - key: private-key.pem
          path: private-key.pem
        {{- if $root.Values.secret.hasSigningKey }}
        - key: signing-key.pem
          path: signing-key.pem
        {{- end }}
  # The data dir (GATE_DATA_DIR): the audit checkpoint log and generated keys,
  # always on a claim so they outlive the pod (persistence in values.yaml).
  - name: data
    persistentVolumeClaim:
      claimName: {{ include "merge-gate.claimName" $root }}
  - name: tmp
    emptyDir:
      medium: Memory
      sizeLimit: 16Mi
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
