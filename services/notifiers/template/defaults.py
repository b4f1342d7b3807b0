"""Tocsin's built-in notification templates.

The names are Alertmanager's, so configs that reference them keep working, and the texts
Alertmanager users see in Slack, PagerDuty and email subjects render byte for byte as
Alertmanager 0.25 renders them (tests/notifiers/test_template_defaults.py checks this against
outputs captured from the real binary). The email HTML body is Tocsin's own layout.
"""

from __future__ import annotations

__all__ = ["DEFAULTS_NAME", "DEFAULT_TEMPLATES"]

#: The file name that errors inside the built-in templates cite.
DEFAULTS_NAME = "default.tmpl"

_COMMON = r"""
{{ define "__alertmanager" }}Alertmanager{{ end }}

{{/* .Receiver is already escaped with regexp.QuoteMeta, as Alertmanager escapes it. */}}
{{ define "__alertmanagerURL" -}}
  {{ .ExternalURL }}/#/alerts?receiver={{ .Receiver | urlquery }}
{{- end }}

{{/* [STATUS:firing count] group label values (other common label values) */}}
{{ define "__subject" -}}
  [{{ toUpper .Status }}{{ if eq .Status "firing" }}:{{ len .Alerts.Firing }}{{ end }}]
  {{- " " }}{{ join " " .GroupLabels.SortedPairs.Values }}
  {{- " " }}{{ if gt (len .CommonLabels) (len .GroupLabels) -}}
    ({{ join " " (.CommonLabels.Remove .GroupLabels.Names).Values }})
  {{- end }}
{{- end }}

{{ define "__description" }}{{ end }}

{{/* The dot is a list of alerts, such as .Alerts.Firing. */}}
{{ define "__text_alert_list" -}}
  {{ range . -}}
    Labels:{{ "\n" }}{{ template "__tocsin_text_pairs" .Labels -}}
    Annotations:{{ "\n" }}{{ template "__tocsin_text_pairs" .Annotations -}}
    Source: {{ .GeneratorURL }}{{ "\n" }}
  {{- end }}
{{- end }}

{{ define "__tocsin_text_pairs" -}}
  {{ range .SortedPairs }} - {{ .Name }} = {{ .Value }}{{ "\n" }}{{ end }}
{{- end }}
"""

_SLACK = r"""
{{ define "slack.default.title" }}{{ template "__subject" . }}{{ end }}
{{ define "slack.default.username" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "slack.default.titlelink" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "slack.default.fallback" -}}
  {{ template "slack.default.title" . }} | {{ template "slack.default.titlelink" . }}
{{- end }}
{{ define "slack.default.pretext" }}{{ end }}
{{ define "slack.default.text" }}{{ end }}
{{ define "slack.default.callbackid" }}{{ end }}
{{ define "slack.default.iconemoji" }}{{ end }}
{{ define "slack.default.iconurl" }}{{ end }}
{{ define "slack.default.footer" }}{{ end }}
"""

_PAGERDUTY = r"""
{{ define "pagerduty.default.description" }}{{ template "__subject" . }}{{ end }}
{{ define "pagerduty.default.client" }}{{ template "__alertmanager" . }}{{ end }}
{{ define "pagerduty.default.clientURL" }}{{ template "__alertmanagerURL" . }}{{ end }}
{{ define "pagerduty.default.instances" }}{{ template "__text_alert_list" . }}{{ end }}
"""

# Rendered with html/template escaping. Inline styles only: mail clients drop <style> blocks.
_EMAIL = r"""
{{ define "email.default.subject" }}{{ template "__subject" . }}{{ end }}

{{ define "email.default.html" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ template "__subject" . }}</title>
</head>
<body style="margin: 0; padding: 24px 12px; background-color: #f3f4f6; color: #1f2937;
  font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size: 14px;">
<div style="max-width: 640px; margin: 0 auto; background-color: #ffffff;
  border: 1px solid #d1d5db; border-radius: 6px;">
<div style="padding: 16px 20px; border-radius: 6px 6px 0 0; color: #ffffff; font-size: 16px;
  font-weight: 600;
  background-color: {{ if eq .Status "firing" }}#b91c1c{{ else }}#15803d{{ end }};">
{{ len .Alerts }} alert{{ if ne (len .Alerts) 1 }}s{{ end }} for
{{- range .GroupLabels.SortedPairs }} {{ .Name }}={{ .Value }}{{ end }}
</div>
<div style="padding: 16px 20px;">
<p style="margin: 0 0 16px;"><a href="{{ template "__alertmanagerURL" . }}"
  style="display: inline-block; padding: 8px 16px; border-radius: 4px; background-color: #2563eb;
  color: #ffffff; font-weight: 600; text-decoration: none;">
  View in {{ template "__alertmanager" . }}</a></p>
{{- if .Alerts.Firing }}
<h2 style="margin: 16px 0 8px; font-size: 15px; color: #b91c1c;">
  Firing: {{ len .Alerts.Firing }}</h2>
{{- range .Alerts.Firing }}{{ template "__tocsin_email_alert" . }}{{ end }}
{{- end }}
{{- if .Alerts.Resolved }}
<h2 style="margin: 16px 0 8px; font-size: 15px; color: #15803d;">
  Resolved: {{ len .Alerts.Resolved }}</h2>
{{- range .Alerts.Resolved }}{{ template "__tocsin_email_alert" . }}{{ end }}
{{- end }}
</div>
<div style="padding: 12px 20px; border-top: 1px solid #e5e7eb; color: #6b7280; font-size: 12px;">
Sent by <a href="{{ .ExternalURL }}" style="color: #6b7280;">{{ template "__alertmanager" . }}</a>
(Tocsin)
</div>
</div>
</body>
</html>
{{ end }}

{{ define "__tocsin_email_alert" }}
<div style="margin: 0 0 12px; padding: 12px; border: 1px solid #e5e7eb; border-radius: 4px;">
<strong>Labels</strong><br>
{{- range .Labels.SortedPairs }}
{{ .Name }} = {{ .Value }}<br>
{{- end }}
{{- if .Annotations }}
<strong>Annotations</strong><br>
{{- range .Annotations.SortedPairs }}
{{ .Name }} = {{ .Value }}<br>
{{- end }}
{{- end }}
<a href="{{ .GeneratorURL }}" style="color: #2563eb;">Source</a>
</div>
{{- end }}
"""

DEFAULT_TEMPLATES = _COMMON + _SLACK + _PAGERDUTY + _EMAIL
