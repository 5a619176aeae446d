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
"true" when the replicas share a Redis (bundled, redis.url, redis.existingSecret, a Sentinel or a
Cluster), "" otherwise.
*/}}
{{- define "kube-sentinel.sharedRedis" -}}
{{- if include "kube-sentinel.redisSources" . }}true{{ end }}
{{- end }}

{{/*
The values that each name a cooldown store, comma-separated in the order the messages list them.
*/}}
{{- define "kube-sentinel.redisSources" -}}
{{- $sources := list }}
{{- if .Values.redis.enabled }}{{ $sources = append $sources "redis.enabled" }}{{ end }}
{{- if .Values.redis.url }}{{ $sources = append $sources "redis.url" }}{{ end }}
{{- if .Values.redis.existingSecret }}{{ $sources = append $sources "redis.existingSecret" }}{{ end }}
{{- if .Values.redis.sentinel.hosts }}{{ $sources = append $sources "redis.sentinel.hosts" }}{{ end }}
{{- if .Values.redis.cluster.nodes }}{{ $sources = append $sources "redis.cluster.nodes" }}{{ end }}
{{- join ", " $sources }}
{{- end }}

{{/*
Fails rendering, naming the values to change in a sentence, on settings that contradict each
other or that the schema cannot explain (values.schema.json keeps the types; these are the rules
between values and the formats of strings). A silent choice between two cooldown stores, replicas
that each keep their own cooldowns, or a ServiceMonitor with no Service to select, would only show
up in production. Every problem is reported at once.
*/}}
{{- define "kube-sentinel.validate" -}}
{{- $problems := list }}
{{- $stores := include "kube-sentinel.redisSources" . }}
{{- if contains ", " $stores }}
{{- $problems = append $problems (printf "set only one of redis.enabled, redis.url, redis.existingSecret, redis.sentinel.hosts and redis.cluster.nodes (got %s): each names a cooldown store, and the replicas must share one" $stores) }}
{{- end }}
{{- $problems = concat $problems (include "kube-sentinel.redisModeProblems" . | fromJsonArray) }}
{{- if not (include "kube-sentinel.sharedRedis" .) }}
{{- $needsRedis := "more than one replica needs a shared Redis, or each keeps its own cooldowns and the same workload is remediated once per replica: set redis.enabled=true, redis.url, redis.existingSecret, redis.sentinel.hosts or redis.cluster.nodes" }}
{{- if .Values.knative.enabled }}
{{- $maxScale := int .Values.knative.maxScale }}
{{- if ne $maxScale 1 }}
{{- $problems = append $problems (printf "knative.maxScale is %s: %s, or knative.maxScale=1" (eq $maxScale 0 | ternary "0 (no limit)" (toString $maxScale)) $needsRedis) }}
{{- end }}
{{- else if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.maxReplicas) 1 }}
{{- $problems = append $problems (printf "autoscaling.enabled with autoscaling.maxReplicas=%d: %s, or autoscaling.enabled=false" (int .Values.autoscaling.maxReplicas) $needsRedis) }}
{{- end }}
{{- else if gt (int .Values.replicaCount) 1 }}
{{- $problems = append $problems (printf "replicaCount is %d: %s, or replicaCount=1" (int .Values.replicaCount) $needsRedis) }}
{{- end }}
{{- end }}
{{- if eq (toString (default "" .Values.image.tag)) "latest" }}
{{- $problems = append $problems "image.tag must pin a version, not latest: a restart must not change the code (leave it empty for the chart's appVersion, or set image.digest)" }}
{{- end }}
{{- if eq (toString (default "" .Values.redis.image.tag)) "latest" }}
{{- $problems = append $problems "redis.image.tag must pin a version, not latest: a restart must not change the store" }}
{{- end }}
{{- $digest := toString (default "" .Values.image.digest) }}
{{- if and $digest (not (regexMatch "^sha256:[a-f0-9]{64}$" $digest)) }}
{{- $problems = append $problems (printf "image.digest must be sha256: followed by 64 lowercase hex digits (got %q)" $digest) }}
{{- end }}
{{- $url := toString (default "" .Values.redis.url) }}
{{- if and $url (not (regexMatch "^rediss?://." $url)) }}
{{- $problems = append $problems "redis.url must start with redis:// or rediss:// (its value is not repeated here: it may hold a password)" }}
{{- end }}
{{- range $name := list "submitTimeout" "pendingLease" "requestTimeout" "keepAliveTimeout" }}
{{- $value := toString (default "" (index $.Values.config $name)) }}
{{- if not (regexMatch "^(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ms|s|m|h))+$" $value) }}
{{- $problems = append $problems (printf "config.%s must be a Go duration such as 10s, 1m30s or 500ms (got %q)" $name $value) }}
{{- end }}
{{- end }}
{{- $ttl := toString (default "" .Values.escalation.ttl) }}
{{- if not (regexMatch "^(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ms|s|m|h))+$" $ttl) }}
{{- $problems = append $problems (printf "escalation.ttl must be a Go duration such as 1h or 30m (got %q)" $ttl) }}
{{- end }}
{{- /* Comma-joined into one variable, so a comma inside a URL would split it. */}}
{{- range $index, $escalationUrl := .Values.escalation.urls }}
{{- if not (regexMatch "^https?://[^\\s,?#]+$" (toString $escalationUrl)) }}
{{- $problems = append $problems (printf "escalation.urls[%d] must be the http:// or https:// base URL of an Alertmanager, such as http://alertmanager.monitoring.svc:9093, without a query, a fragment or a comma (its value is not repeated here: it may hold a password)" $index) }}
{{- end }}
{{- end }}
{{- $argoUiUrl := toString (default "" .Values.argoUi.url) }}
{{- if and $argoUiUrl (not (regexMatch "^https?://[^\\s?#]+$" $argoUiUrl)) }}
{{- $problems = append $problems (printf "argoUi.url must be the http:// or https:// base URL of the Argo UI, such as https://argo.example.com, without a query or a fragment (got %q)" $argoUiUrl) }}
{{- end }}
{{- range $index, $rule := .Values.rules.custom }}
{{- range $field := list "cooldown" "attempt_window" "approval_timeout" }}
{{- $duration := toString (default "" (dig "remediation" $field "" $rule)) }}
{{- if and $duration (not (regexMatch "^(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ms|s|m|h))+$" $duration)) }}
{{- $problems = append $problems (printf "rules.custom[%d] (%s): remediation.%s must be a Go duration such as 30s, 10m or 1h30m (got %q)" $index (toString $rule.name) $field $duration) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name := list "interval" "scrapeTimeout" }}
{{- $value := toString (default "" (index $.Values.serviceMonitor $name)) }}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h|d|w|y))+$" $value) }}
{{- $problems = append $problems (printf "serviceMonitor.%s must be a Prometheus duration such as 30s or 1m (got %q)" $name $value) }}
{{- end }}
{{- end }}
{{- if and .Values.knative.enabled .Values.serviceMonitor.enabled }}
{{- $problems = append $problems "serviceMonitor.enabled selects the chart's Service, which knative.enabled replaces: scrape the Knative revision's pods (prometheus.io annotations or a PodMonitor) instead" }}
{{- end }}
{{- if and (not .Values.rules.defaults) (empty .Values.rules.custom) (empty .Values.rules.files) }}
{{- $problems = append $problems "rules: nothing to load; keep rules.defaults=true or give rules.custom or rules.files" }}
{{- end }}
{{- range $name, $_ := .Values.rules.files }}
{{- if has $name (list "default.yaml" "custom.yaml" "excluded-namespaces.yaml") }}
{{- $problems = append $problems (printf "rules.files: %s is a name the chart writes itself; choose another file name" $name) }}
{{- else if not (regexMatch "^[-_a-zA-Z0-9][-._a-zA-Z0-9]*\\.ya?ml$" $name) }}
{{- $problems = append $problems (printf "rules.files: %q must be a file name ending in .yaml or .yml (letters, digits, -, _ and .), since the receiver loads only those" $name) }}
{{- end }}
{{- end }}
{{- if and .Values.workflowTemplates.enabled (not ($.Files.Glob "files/workflowtemplates/*.yaml")) }}
{{- $problems = append $problems "workflowTemplates.enabled: files/workflowtemplates/*.yaml is missing from the chart" }}
{{- end }}
{{- with .Values.clusters.list }}
{{- $names := list }}
{{- range $index, $cluster := . }}
{{- if has $cluster.name $names }}
{{- $problems = append $problems (printf "clusters.list[%d]: the name %q is given twice; each cluster needs its own" $index $cluster.name) }}
{{- end }}
{{- $names = append $names $cluster.name }}
{{- if and $cluster.kubeconfig (not (include "kube-sentinel.kubeconfigsSecretName" $)) }}
{{- $problems = append $problems (printf "clusters.list[%d] (%s) names kubeconfig %q, but there is no kubeconfigs Secret: set clusters.kubeconfigs.existingSecret or clusters.kubeconfigs.files" $index $cluster.name $cluster.kubeconfig) }}
{{- end }}
{{- if and $cluster.kubeconfig $.Values.clusters.kubeconfigs.files (not $.Values.clusters.kubeconfigs.existingSecret) (not (hasKey $.Values.clusters.kubeconfigs.files $cluster.kubeconfig)) }}
{{- $problems = append $problems (printf "clusters.list[%d] (%s) names kubeconfig %q, which clusters.kubeconfigs.files does not have" $index $cluster.name $cluster.kubeconfig) }}
{{- end }}
{{- end }}
{{- $default := toString (default "" $.Values.clusters.default) }}
{{- if and (not $default) (gt (len $names) 1) }}
{{- $problems = append $problems (printf "clusters.default must name the cluster an alert without the %s label goes to: one of %s" $.Values.clusters.label (join ", " $names)) }}
{{- else if and $default (not (has $default $names)) }}
{{- $problems = append $problems (printf "clusters.default %q is not one of clusters.list (%s)" $default (join ", " $names)) }}
{{- end }}
{{- end }}
{{- if $problems }}
{{- $message := join "; " $problems }}
{{- fail $message }}
{{- /*
Reached only under `helm lint`, whose fail just logs "[INFO] Fail: ..." and renders on
(helm/helm#8973): this unclosed list is YAML no parser accepts, so lint fails too.
*/}}
invalid-values: [{{ $message | quote }}
---
{{- end }}
{{- end }}

{{/*
What the Sentinel, Cluster, password and waitReplicas values need of each other, as a JSON list of
sentences (kube-sentinel.validate adds them to its own). The receiver refuses the same at start
(src/config.ts), but a pod that exits 2 in a crash loop says it later and less plainly than helm.
*/}}
{{- define "kube-sentinel.redisModeProblems" -}}
{{- $problems := list }}
{{- $redis := .Values.redis }}
{{- if and $redis.sentinel.hosts (not $redis.sentinel.masterName) }}
{{- $problems = append $problems "redis.sentinel.hosts needs redis.sentinel.masterName, the master the sentinels watch (their sentinel monitor <name>)" }}
{{- end }}
{{- if and $redis.sentinel.masterName (not $redis.sentinel.hosts) }}
{{- $problems = append $problems "redis.sentinel.masterName is for Redis Sentinel: set redis.sentinel.hosts too" }}
{{- end }}
{{- range $list := list (dict "name" "redis.sentinel.hosts" "entries" $redis.sentinel.hosts "example" "redis-node-0.redis-headless.redis.svc:26379") (dict "name" "redis.cluster.nodes" "entries" $redis.cluster.nodes "example" "redis-cluster-0.redis-cluster-headless.redis.svc:6379") }}
{{- range $index, $entry := $list.entries }}
{{- $value := toString $entry }}
{{- $port := 0 }}
{{- if regexMatch "^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\],]+):[0-9]{1,5}$" $value }}
{{- $port = regexReplaceAll "^.*:" $value "" | atoi }}
{{- end }}
{{- if or (lt $port 1) (gt $port 65535) }}
{{- $problems = append $problems (printf "%s[%d] must be host:port (port 1-65535, [address]:port for IPv6), such as %s (got %q)" $list.name $index $list.example $value) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $redis.sentinel.password.existingSecret (not $redis.sentinel.hosts) }}
{{- $problems = append $problems "redis.sentinel.password.existingSecret is the sentinels' own password: set redis.sentinel.hosts, or leave it empty" }}
{{- end }}
{{- if and $redis.password.existingSecret (not (or $redis.sentinel.hosts $redis.cluster.nodes)) }}
{{- $problems = append $problems "redis.password.existingSecret is the password of a Sentinel's or a Cluster's Redis servers: set redis.sentinel.hosts or redis.cluster.nodes, or leave it empty (a URL in redis.url or redis.existingSecret carries its own password, and the bundled Redis has none)" }}
{{- end }}
{{- $wait := int $redis.waitReplicas }}
{{- if gt $wait 0 }}
{{- if $redis.enabled }}
{{- $problems = append $problems (printf "redis.waitReplicas is %d, but the bundled Redis (redis.enabled) has no replicas, and every claim would fail closed: set redis.waitReplicas=0, or use a Sentinel or Cluster with replicas" $wait) }}
{{- else if not (include "kube-sentinel.sharedRedis" .) }}
{{- $problems = append $problems (printf "redis.waitReplicas is %d, but there is no Redis whose replicas could acknowledge a claim: set redis.sentinel.hosts, redis.cluster.nodes, redis.url or redis.existingSecret, or redis.waitReplicas=0" $wait) }}
{{- end }}
{{- end }}
{{- toJson $problems }}
{{- end }}

{{/*
How the receiver reaches Redis: REDIS_URL from the bundled Redis, redis.url or redis.existingSecret;
the sentinels and master name; or the cluster's nodes; nothing (in-memory cooldowns) when none is
set. The password of a Sentinel's or Cluster's servers is a file (kube-sentinel.volumes mounts it).
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
{{- else if .Values.redis.sentinel.hosts }}
- name: KUBE_SENTINEL_REDIS_SENTINELS
  value: {{ join "," .Values.redis.sentinel.hosts | quote }}
- name: KUBE_SENTINEL_REDIS_MASTER_NAME
  value: {{ .Values.redis.sentinel.masterName | quote }}
{{- else if .Values.redis.cluster.nodes }}
- name: KUBE_SENTINEL_REDIS_CLUSTER_NODES
  value: {{ join "," .Values.redis.cluster.nodes | quote }}
{{- end }}
{{- if .Values.redis.password.existingSecret }}
- name: KUBE_SENTINEL_REDIS_PASSWORD_FILE
  value: /etc/kube-sentinel/redis/password
{{- end }}
{{- if .Values.redis.sentinel.password.existingSecret }}
- name: KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE
  value: /etc/kube-sentinel/redis-sentinel/password
{{- end }}
- name: KUBE_SENTINEL_REDIS_WAIT_REPLICAS
  value: {{ .Values.redis.waitReplicas | int64 | toString | quote }}
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
    - name: KUBE_SENTINEL_MAX_ALERTS_IN_FLIGHT
      value: {{ $values.config.maxAlertsInFlight | int64 | toString | quote }}
    - name: KUBE_SENTINEL_REQUEST_TIMEOUT
      value: {{ $values.config.requestTimeout | quote }}
    - name: KUBE_SENTINEL_KEEP_ALIVE_TIMEOUT
      value: {{ $values.config.keepAliveTimeout | quote }}
    - name: KUBE_SENTINEL_MAX_CONNECTIONS
      value: {{ $values.config.maxConnections | int64 | toString | quote }}
    - name: KUBE_SENTINEL_CHECK_TEMPLATES
      value: {{ $values.config.checkTemplates | toString | quote }}
    # "": escalations are logged, recorded and counted, not sent.
    - name: KUBE_SENTINEL_ESCALATION_URLS
      value: {{ join "," $values.escalation.urls | quote }}
    - name: KUBE_SENTINEL_ESCALATION_TTL
      value: {{ $values.escalation.ttl | quote }}
    {{- with $values.argoUi.url }}
    - name: KUBE_SENTINEL_ARGO_UI_URL
      value: {{ . | quote }}
    {{- end }}
    {{- with include "kube-sentinel.authSecretName" $root }}
    - name: KUBE_SENTINEL_AUTH_TOKEN_FILE
      value: /etc/kube-sentinel/auth/token
    {{- end }}
    {{- if $values.clusters.list }}
    - name: KUBE_SENTINEL_CLUSTERS
      value: /etc/kube-sentinel/clusters/clusters.yaml
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
    {{- if $values.clusters.list }}
    - name: clusters
      mountPath: /etc/kube-sentinel/clusters
      readOnly: true
    {{- end }}
    {{- if and $values.clusters.list (include "kube-sentinel.kubeconfigsSecretName" $root) }}
    - name: kubeconfigs
      mountPath: /etc/kube-sentinel/kubeconfigs
      readOnly: true
    {{- end }}
    {{- if $values.redis.password.existingSecret }}
    - name: redis-password
      mountPath: /etc/kube-sentinel/redis
      readOnly: true
    {{- end }}
    {{- if $values.redis.sentinel.password.existingSecret }}
    - name: redis-sentinel-password
      mountPath: /etc/kube-sentinel/redis-sentinel
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
{{- if $root.Values.clusters.list }}
- name: clusters
  configMap:
    name: {{ include "kube-sentinel.fullname" $root }}-clusters
{{- with include "kube-sentinel.kubeconfigsSecretName" $root }}
- name: kubeconfigs
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}
{{- with $root.Values.redis.password }}
{{- if .existingSecret }}
- name: redis-password
  secret:
    secretName: {{ .existingSecret }}
    items:
      - key: {{ .existingSecretKey }}
        path: password
{{- end }}
{{- end }}
{{- with $root.Values.redis.sentinel.password }}
{{- if .existingSecret }}
- name: redis-sentinel-password
  secret:
    secretName: {{ .existingSecret }}
    items:
      - key: {{ .existingSecretKey }}
        path: password
{{- end }}
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

{{/*
The Secret of kubeconfig files for clusters.list: the one given, the chart's own (from
clusters.kubeconfigs.files), or none.
*/}}
{{- define "kube-sentinel.kubeconfigsSecretName" -}}
{{- if .Values.clusters.kubeconfigs.existingSecret }}
{{- .Values.clusters.kubeconfigs.existingSecret }}
{{- else if .Values.clusters.kubeconfigs.files }}
{{- include "kube-sentinel.fullname" . }}-kubeconfigs
{{- end }}
{{- end }}

{{/*
The clusters file KUBE_SENTINEL_CLUSTERS names (src/clusters.ts reads it): each kubeconfig is the
path of its key in the mounted kubeconfigs Secret.
*/}}
{{- define "kube-sentinel.clustersFile" -}}
{{- $clusters := list }}
{{- range .Values.clusters.list }}
{{- $entry := dict "name" .name }}
{{- with .kubeconfig }}{{ $_ := set $entry "kubeconfig" (printf "/etc/kube-sentinel/kubeconfigs/%s" .) }}{{ end }}
{{- with .context }}{{ $_ := set $entry "context" . }}{{ end }}
{{- $clusters = append $clusters $entry }}
{{- end }}
{{- $file := dict "label" .Values.clusters.label "clusters" $clusters }}
{{- with .Values.clusters.default }}{{ $_ := set $file "default" . }}{{ end }}
{{- toYaml $file }}
{{- end }}
