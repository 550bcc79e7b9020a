{{/* Names and labels. */}}
{{- define "archiver.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "archiver.selectorLabels" -}}
app.kubernetes.io/name: livehook-archiver
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "archiver.labels" -}}
{{ include "archiver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "archiver.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* GOMEMLIMIT: memoryLimitPercent of resources.limits.memory, in bytes. The limit is a
Kubernetes quantity: plain bytes (a number or a string), or a number, possibly with a fraction,
followed by a binary (Ki, Mi, Gi, Ti, Pi, Ei) or decimal (k, M, G, T, P, E) suffix; a fraction
of a byte rounds up, as Kubernetes does. */}}
{{- define "archiver.gomemlimit" -}}
{{- $v := required "resources.limits.memory is required: GOMEMLIMIT is derived from it" .Values.resources.limits.memory -}}
{{- $m := toString $v -}}
{{- if kindIs "float64" $v -}}
{{- $m = printf "%.0f" $v -}}
{{- end -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" $m) -}}
{{- fail (printf "resources.limits.memory %q: give it in bytes or with a suffix, e.g. 268435456, 256Mi, 1Gi, 512M or 1G" $m) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" $m -}}
{{- $units := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "Pi" 1125899906842624 "Ei" 1152921504606846976 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "P" 1000000000000000 "E" 1000000000000000000 -}}
{{- $frac := "" -}}
{{- if contains "." $n -}}
{{- $frac = splitList "." $n | last -}}
{{- end -}}
{{- /* Integer arithmetic (1.1G is 1100000000 bytes exactly): digits x unit / 10^len(fraction), rounded up. */ -}}
{{- $scale := printf "1%s" (repeat (len $frac) "0") | atoi -}}
{{- $digits := replace "." "" $n | atoi -}}
{{- $unit := get $units (trimPrefix $n $m) -}}
{{- if or (eq $digits 0) (gt $digits (div 9223372036854775806 $unit)) -}}
{{- fail (printf "resources.limits.memory %q: want more than 0 bytes and less than 8Ei" $m) -}}
{{- end -}}
{{- $bytes := div (add (mul $digits $unit) (sub $scale 1)) $scale -}}
{{- $pct := .Values.memoryLimitPercent | int64 -}}
{{- /* b*p/100 without overflowing int64 for the largest sizes. */ -}}
{{- add (mul (div $bytes 100) $pct) (div (mul (mod $bytes 100) $pct) 100) -}}
{{- end -}}

{{/* The checks every manifest relies on. */}}
{{- define "archiver.validate" -}}
{{- if not (has .Values.mode (list "spool" "store")) -}}
{{- fail (printf "mode %q: use spool (StatefulSet with a volume) or store (stateless Deployment)" .Values.mode) -}}
{{- end -}}
{{- if not (hasPrefix "s3://" (required "store.url is required: s3://BUCKET/PREFIX" .Values.store.url)) -}}
{{- fail (printf "store.url %q: want s3://BUCKET/PREFIX" .Values.store.url) -}}
{{- end -}}
{{- $_ := required "keys.existingSecret is required: a Secret with keys.json (the push domains' auth_sign keys); the chart never accepts unsigned callbacks" .Values.keys.existingSecret -}}
{{- if and .Values.relay.destinations (ne .Values.mode "spool") -}}
{{- fail "relay.destinations needs mode spool: the relay forwards from the spool; store mode keeps no local record to forward from" -}}
{{- end -}}
{{- if and .Values.cronJob.enabled (or (not .Values.digest.existingSecret) (not .Values.digest.publicKeyConfigMap)) -}}
{{- fail "cronJob.enabled needs digest.existingSecret (compaction signs) and digest.publicKeyConfigMap (verify checks)" -}}
{{- end -}}
{{- end -}}

{{/* archiver serve's flags (the image's entrypoint is `archiver serve`). */}}
{{- define "archiver.args" -}}
- --listen=:8080
- --admin-listen=:{{ .Values.admin.port }}
- --ack={{ .Values.mode }}
{{- if eq .Values.mode "spool" }}
- --spool=/var/lib/livehook/spool
- --spool-max-bytes={{ .Values.spool.maxBytes }}
{{- end }}
- --store={{ .Values.store.url }}
{{- with .Values.store.endpoint }}
- --s3-endpoint={{ . }}
{{- end }}
{{- with .Values.store.region }}
- --s3-region={{ . }}
{{- end }}
{{- if not .Values.store.probe }}
- --store-probe=false
{{- end }}
- --keys=/etc/livehook/keys.json
{{- if .Values.digest.existingSecret }}
- --digest-key=/etc/livehook/digest-key.pem
{{- end }}
{{- with .Values.digest.objectLock }}
- --object-lock={{ . }}
{{- end }}
{{- range .Values.allowDomains }}
- --allow-domain={{ . }}
{{- end }}
{{- if .Values.tls.existingSecret }}
- --tls-cert=/etc/livehook-tls/tls.crt
- --tls-key=/etc/livehook-tls/tls.key
{{- end }}
{{- if .Values.relay.destinations }}
- --forward-config=/etc/livehook-relay/forward.yaml
{{- end }}
- --log-level={{ .Values.logLevel }}
- --shutdown-timeout={{ .Values.shutdownTimeout }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- end -}}

{{/* The pod: init container for owner-only keys, the archiver, volumes (not the spool claim). */}}
{{- define "archiver.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- /* Past the shutdown timeout: SIGTERM uploads the spool for --shutdown-timeout first. */}}
terminationGracePeriodSeconds: {{ add (trimSuffix "s" .Values.shutdownTimeout | atoi) 20 }}
securityContext: {{ toYaml .Values.podSecurityContext | nindent 2 }}
initContainers:
  - name: keys
    image: {{ .Values.initImage }}
    # The archiver refuses a keys file others can read; Secret volumes are group-readable for fsGroup.
    command: [sh, -c, "install -m 0600 -o 65532 -g 65532 /secret/keys/* {{ if .Values.digest.existingSecret }}/secret/digest/* {{ end }}/etc/livehook/"]
    securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: [ALL], add: [CHOWN, DAC_OVERRIDE, FOWNER] } }
    resources: { requests: { cpu: 10m, memory: 16Mi }, limits: { memory: 32Mi } }
    volumeMounts:
      - { name: keys-secret, mountPath: /secret/keys, readOnly: true }
      {{- if .Values.digest.existingSecret }}
      - { name: digest-secret, mountPath: /secret/digest, readOnly: true }
      {{- end }}
      - { name: keys, mountPath: /etc/livehook }
containers:
  - name: archiver
    image: {{ include "archiver.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    securityContext: {{ toYaml .Values.securityContext | nindent 6 }}
    args:
      {{- include "archiver.args" . | nindent 6 }}
    env:
      - name: GOMEMLIMIT
        value: {{ include "archiver.gomemlimit" . | quote }}
    {{- with .Values.store.credentialsSecret }}
    envFrom:
      - secretRef: { name: {{ . }} }
    {{- end }}
    ports:
      - { name: callback, containerPort: 8080 }
      - { name: admin, containerPort: {{ .Values.admin.port }} }
    readinessProbe:
      httpGet: { path: /readyz, port: admin }
      periodSeconds: 5
    livenessProbe:
      httpGet: { path: /healthz, port: admin }
      periodSeconds: 10
    resources: {{ toYaml .Values.resources | nindent 6 }}
    volumeMounts:
      - { name: keys, mountPath: /etc/livehook, readOnly: true }
      {{- if eq .Values.mode "spool" }}
      - { name: spool, mountPath: /var/lib/livehook }
      {{- end }}
      {{- if .Values.tls.existingSecret }}
      - { name: tls, mountPath: /etc/livehook-tls, readOnly: true }
      {{- end }}
      {{- if .Values.relay.destinations }}
      - { name: relay, mountPath: /etc/livehook-relay, readOnly: true }
      {{- end }}
volumes:
  - name: keys-secret
    secret: { secretName: {{ .Values.keys.existingSecret }}, defaultMode: 0400, items: [{ key: {{ .Values.keys.key }}, path: keys.json }] }
  {{- if .Values.digest.existingSecret }}
  - name: digest-secret
    secret: { secretName: {{ .Values.digest.existingSecret }}, defaultMode: 0400, items: [{ key: {{ .Values.digest.key }}, path: digest-key.pem }] }
  {{- end }}
  - name: keys
    emptyDir: { medium: Memory, sizeLimit: 1Mi }
  {{- if .Values.tls.existingSecret }}
  - name: tls
    secret: { secretName: {{ .Values.tls.existingSecret }}, defaultMode: 0440 }
  {{- end }}
  {{- if .Values.relay.destinations }}
  - name: relay
    configMap: { name: {{ include "archiver.fullname" . }}-relay }
  {{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
