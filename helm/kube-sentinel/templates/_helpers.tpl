{{/*
Chart name, cut to 63 characters (a DNS label; some Kubernetes name fields are limited to this).
*/}}
{{- define "kube-sentinel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, cut to 63 characters. A release name that already contains the chart
name is used as is, so `helm install kube-sentinel` names things kube-sentinel, not
kube-sentinel-kube-sentinel.
*/}}
{{- define "kube-sentinel.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "kube-sentinel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels every object carries.
*/}}
{{- define "kube-sentinel.labels" -}}
helm.sh/chart: {{ include "kube-sentinel.chart" . }}
{{ include "kube-sentinel.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-sentinel
{{- end }}

{{/*
Labels that identify this release's objects. Never change them: a Deployment's selector is
immutable.
*/}}
{{- define "kube-sentinel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-sentinel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The receiver's pods. The component label keeps the receiver's selector (Deployment, Service,
PDB, ServiceMonitor) from also matching the bundled Redis, which shares name and instance.
*/}}
{{- define "kube-sentinel.receiverSelectorLabels" -}}
{{ include "kube-sentinel.selectorLabels" . }}
app.kubernetes.io/component: receiver
{{- end }}

{{- define "kube-sentinel.redisSelectorLabels" -}}
{{ include "kube-sentinel.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{/*
The receiver's ServiceAccount.
*/}}
{{- define "kube-sentinel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-sentinel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The receiver's image. A digest pins it exactly; otherwise the tag, defaulting to appVersion.
*/}}
{{- define "kube-sentinel.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "kube-sentinel.rulesConfigMapName" -}}
{{ include "kube-sentinel.fullname" . }}-rules
{{- end }}

{{- define "kube-sentinel.redisName" -}}
{{ include "kube-sentinel.fullname" . }}-redis
{{- end }}

{{/*
Name of the Secret holding the auth token, "" when there is no token.
*/}}
{{- define "kube-sentinel.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if .Values.auth.token }}
{{- include "kube-sentinel.fullname" . }}-auth
{{- end }}
{{- end }}

{{- define "kube-sentinel.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/*
Fails rendering on settings that contradict each other, naming the values to change: a silent
choice between two cooldown stores, or a ServiceMonitor with no Service to select, would only
show up in production.
*/}}
{{- define "kube-sentinel.validate" -}}
{{- $stores := list }}
{{- if .Values.redis.enabled }}{{ $stores = append $stores "redis.enabled" }}{{ end }}
{{- if .Values.redis.url }}{{ $stores = append $stores "redis.url" }}{{ end }}
{{- if .Values.redis.existingSecret }}{{ $stores = append $stores "redis.existingSecret" }}{{ end }}
{{- if gt (len $stores) 1 }}
{{- fail (printf "set only one of redis.enabled, redis.url and redis.existingSecret (got %s)" (join ", " $stores)) }}
{{- end }}
{{- if and .Values.knative.enabled .Values.serviceMonitor.enabled }}
{{- fail "serviceMonitor.enabled selects the chart's Service, which knative.enabled replaces: scrape the Knative revision's pods (prometheus.io annotations or a PodMonitor) instead" }}
{{- end }}
{{- if and (not .Values.rules.defaults) (empty .Values.rules.custom) (empty .Values.rules.files) }}
{{- fail "rules: nothing to load; keep rules.defaults=true or give rules.custom or rules.files" }}
{{- end }}
{{- range $name, $_ := .Values.rules.files }}
{{- if has $name (list "default.yaml" "custom.yaml" "excluded-namespaces.yaml") }}
{{- fail (printf "rules.files: %s is a name the chart writes itself; choose another file name" $name) }}
{{- end }}
{{- end }}
{{- if and .Values.workflowTemplates.enabled (not ($.Files.Glob "files/workflowtemplates/*.yaml")) }}
{{- fail "workflowTemplates.enabled: files/workflowtemplates/*.yaml is missing from the chart" }}
{{- end }}
{{- end }}

{{/*
REDIS_URL from the bundled Redis, redis.url or redis.existingSecret; nothing (in-memory
cooldowns) when none is set.
*/}}
{{- define "kube-sentinel.redisEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_URL
  value: {{ printf "redis://%s.%s.svc:6379" (include "kube-sentinel.redisName" .) .Release.Namespace | quote }}
{{- else if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- end }}

{{/*
The receiver container, shared by the Deployment and the Knative Service. Call with
(dict "root" $ "knative" bool). Knative sets PORT itself (and refuses it from the user), names
its port http1, and accepts a probe port only as the container's port number.
*/}}
{{- define "kube-sentinel.container" -}}
{{- $root := .root }}
{{- $values := $root.Values -}}
- name: kube-sentinel
  image: {{ include "kube-sentinel.image" $root | quote }}
  imagePullPolicy: {{ $values.image.pullPolicy }}
  # No command or args: the image's CMD is `node dist/cli.js serve`; every setting comes from
  # the environment below.
  ports:
    {{- if .knative }}
    - name: http1
      containerPort: 8080
      protocol: TCP
    {{- else }}
    - name: http
      containerPort: 8080
      protocol: TCP
    {{- end }}
  env:
    {{- if not .knative }}
    - name: PORT
      value: "8080"
    {{- end }}
    - name: KUBE_SENTINEL_RULES
      value: /etc/kube-sentinel/rules
    - name: KUBE_SENTINEL_WORKFLOW_NAMESPACE
      value: {{ $values.workflow.namespace | quote }}
    - name: KUBE_SENTINEL_WORKFLOW_SERVICE_ACCOUNT
      value: {{ $values.workflow.serviceAccount | quote }}
    - name: LOG_LEVEL
      value: {{ $values.config.logLevel | quote }}
    - name: KUBE_SENTINEL_DRY_RUN
      value: {{ $values.config.dryRun | toString | quote }}
    - name: KUBE_SENTINEL_COOLDOWN_STORE_FAILURE
      value: {{ $values.config.cooldownStoreFailure | quote }}
    - name: KUBE_SENTINEL_MAX_WORKFLOWS_PER_MINUTE
      value: {{ $values.config.maxWorkflowsPerMinute | int64 | toString | quote }}
    - name: KUBE_SENTINEL_SUBMIT_TIMEOUT
      value: {{ $values.config.submitTimeout | quote }}
    - name: KUBE_SENTINEL_PENDING_LEASE
      value: {{ $values.config.pendingLease | quote }}
    - name: KUBE_SENTINEL_BODY_LIMIT
      value: {{ $values.config.bodyLimit | int64 | toString | quote }}
    - name: KUBE_SENTINEL_CHECK_TEMPLATES
      value: {{ $values.config.checkTemplates | toString | quote }}
    {{- with include "kube-sentinel.authSecretName" $root }}
    - name: KUBE_SENTINEL_AUTH_TOKEN_FILE
      value: /etc/kube-sentinel/auth/token
    {{- end }}
    {{- with include "kube-sentinel.redisEnv" $root }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    # `kube-sentinel check` names the receiver's identity in the RBAC fixes it prints.
    - name: POD_NAMESPACE
      value: {{ $root.Release.Namespace | quote }}
    - name: SERVICE_ACCOUNT_NAME
      value: {{ include "kube-sentinel.serviceAccountName" $root | quote }}
    {{- with $values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ if .knative }}8080{{ else }}http{{ end }}
    initialDelaySeconds: 5
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ if .knative }}8080{{ else }}http{{ end }}
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  resources:
    {{- toYaml $values.resources | nindent 4 }}
  securityContext:
    {{- toYaml $values.securityContext | nindent 4 }}
  volumeMounts:
    # A directory mount, never subPath: subPath mounts never see ConfigMap updates, and hot
    # reload of the rules depends on the kubelet swapping the directory's ..data symlink.
    - name: rules
      mountPath: /etc/kube-sentinel/rules
      readOnly: true
    {{- if include "kube-sentinel.authSecretName" $root }}
    - name: auth
      mountPath: /etc/kube-sentinel/auth
      readOnly: true
    {{- end }}
    {{- if not .knative }}
    # The root filesystem is read-only; anything that needs scratch space gets /tmp.
    - name: tmp
      mountPath: /tmp
    {{- end }}
{{- end }}

{{/*
The pod's volumes, matching the container's mounts. Knative refuses emptyDir unless its
kubernetes.podspec-emptydir flag is on, and the receiver needs no scratch space to run.
*/}}
{{- define "kube-sentinel.volumes" -}}
{{- $root := .root -}}
- name: rules
  configMap:
    name: {{ include "kube-sentinel.rulesConfigMapName" $root }}
{{- with include "kube-sentinel.authSecretName" $root }}
- name: auth
  secret:
    secretName: {{ . }}
    items:
      - key: {{ include "kube-sentinel.authSecretKey" $root }}
        path: token
{{- end }}
{{- if not .knative }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
{{- end }}

{{/*
The PDB applies when asked, or (enabled: null) when more than one replica runs.
*/}}
{{- define "kube-sentinel.pdbEnabled" -}}
{{- $enabled := .Values.podDisruptionBudget.enabled }}
{{- if kindIs "bool" $enabled }}
{{- if $enabled }}true{{ end }}
{{- else if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}
