{{- define "emporium.labels" -}}
app.kubernetes.io/name: emporium-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: emporium
{{- end -}}
{{- define "emporium.selector" -}}
app.kubernetes.io/name: emporium-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
