"""Go template cases whose expected output comes from Alertmanager 0.25's own engine.

`amtool template render` executes a text with Alertmanager's functions, default templates and a
JSON data file, in text or html mode. `python -m tests.notifiers.amtool_corpus` re-runs every
case below through it and rewrites tests/testdata/templates/amtool-cases.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from services.notifiers.template import KV, Alert, Data
from services.notifiers.template.data import Alerts
from services.notifiers.template.gotime import GoTime
from services.notifiers.template.gotypes import GoType, Kind

CORPUS_FILE = Path(__file__).parents[1] / "testdata" / "templates" / "amtool-cases.json"
#: Where the Debian package keeps Alertmanager's default.tmpl and email.tmpl.
AM_DEFAULTS = "/usr/share/prometheus/alertmanager/*.tmpl"

DATA: dict[str, dict[str, Any]] = {
    "two": {
        "receiver": "team-x",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighCPU",
                    "instance": "a:9100",
                    "job": "node",
                    "severity": "critical",
                },
                "annotations": {"summary": "CPU <high> & hot", "description": "desc"},
                "startsAt": "2026-11-27T02:10:31.083842749Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph?g0.expr=up&x=1",
                "fingerprint": "f640b7e1ff8afe25",
            },
            {
                "status": "resolved",
                "labels": {
                    "alertname": "HighCPU",
                    "instance": "b:9100",
                    "job": "node",
                    "severity": "critical",
                },
                "annotations": {"summary": "CPU high"},
                "startsAt": "2026-11-27T01:00:00+02:00",
                "endsAt": "2026-11-27T03:04:05.5Z",
                "generatorURL": "",
                "fingerprint": "c13f7a2620dad38a",
            },
        ],
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU", "job": "node", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
    },
    "none": {
        "receiver": r"team\.x\+y",
        "status": "resolved",
        "alerts": [],
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
    },
}

USER_FILE = (
    '{{ define "__subject" }}custom {{ .Status }}{{ end }}\n'
    '{{ define "mine" }}<{{ template "slack.default.title" . }}>{{ end }}\n'
    '{{ define "list" }}{{ range . }}{{ .Fingerprint }};{{ end }}{{ end }}'
)

# (id, template text); texts run against DATA["two"] unless the id says otherwise.
TEXT_CASES: list[tuple[str, str]] = [
    # literals and printing
    (
        "numbers",
        "{{ 1.0 }} {{ 1e6 }} {{ 123456789.0 }} {{ 0.00001 }} {{ 0x10 }} {{ 'a' }} {{ 1_000 }}",
    ),
    ("number-forms", "{{ -0 }} {{ +5 }} {{ .5 }} {{ 0b101 }} {{ 0o17 }} {{ 017 }} {{ 1i }}"),
    ("string-escapes", '{{ "\\x41\\u00e9\\101\\t|" }}'),
    ("raw-string", "{{ `raw\\n` }}"),
    ("chars", "{{ '\\n' }} {{ 'é' }}"),
    ("bools-nil-print", '{{ true }} {{ print nil }}{{ print }}|{{ print 1 2 "a" "b" 3 nil }}'),
    ("println", '{{ println 1 "a" }}'),
    ("print-data", "{{ . }}"),
    ("print-alerts", "{{ .Alerts }}"),
    (
        "print-kv-and-pairs",
        "{{ .CommonLabels }} {{ .CommonLabels.SortedPairs }} {{ .CommonLabels.Names }}",
    ),
    ("missing-key-is-empty", '[{{ .CommonLabels.nope }}|{{ index .CommonLabels "nope" }}]'),
    (
        "missing-field-of-missing-value",
        "{{ with .CommonAnnotations }}x{{ else }}[{{ .CommonAnnotations.a }}]{{ end }}",
    ),
    # trimming and comments
    ("trim-markers", '{{- " a " -}} b {{- /* c */ -}} c'),
    ("trim-newlines", "{{- if true -}}\n  yes  \n{{- else -}}\n  no\n{{- end -}}\n"),
    ("trim-vs-negative-number", "a {{- 3 }}|a {{-3 }}|{{3 -}} b|{{3-}} b"),
    ("comment-alone", " {{- /* c */}} x{{ /* c */ }}"),
    # control structures and variables
    ("if-else-if", '{{ if eq .Status "firing" "resolved" }}A{{ else if true }}B{{ end }}'),
    (
        "with-else",
        "{{ with .CommonAnnotations }}x{{ else }}empty{{ end }} {{ with $x := .Status }}{{ $x }}{{ end }}",
    ),
    ("range-index-value", "{{ range $i, $v := .Alerts }}{{ $i }}:{{ $v.Fingerprint }} {{ end }}"),
    ("range-map-sorted", "{{ range $k, $v := .CommonLabels }}{{ $k }}={{ $v }};{{ end }}"),
    ("range-map-values", "{{ range .CommonLabels }}{{ . }},{{ else }}none{{ end }}"),
    ("range-else", "{{ range .CommonAnnotations }}{{ . }}{{ else }}none{{ end }}"),
    (
        "range-pairs",
        "{{ range $i, $p := .CommonLabels.SortedPairs }}{{ $i }}:{{ $p.Name }}={{ .Value }} {{ end }}",
    ),
    ("break", "{{ range .Alerts }}{{ .Fingerprint }}{{ break }}{{ end }}"),
    (
        "continue",
        '{{ range .Alerts }}{{ if eq .Status "resolved" }}{{ continue }}{{ end }}{{ .Fingerprint }}{{ end }}',
    ),
    (
        "assign",
        "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}{{ range $i, $e := .Alerts }}{{ $x = $i }}{{ end }}{{ $x }}",
    ),
    ("dollar", "{{ $.Status }}{{ range .Alerts }}{{ $.Receiver }}{{ end }}"),
    (
        "define-template-block",
        '{{ define "x" }}X{{ . }}{{ end }}{{ template "x" 5 }}{{ block "y" . }}Y{{ .Status }}{{ end }}',
    ),
    ("template-without-dot", '{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" }}'),
    (
        "pipelines",
        '{{ "x" | printf "%s-%s" "y" }} {{ .Alerts | len }} {{ .Status | len | printf "%03d" }}',
    ),
    ("parenthesized-chain", '{{ (index .Alerts 0).Labels.severity | toUpper | printf "[%s]" }}'),
    # builtins
    (
        "and-or",
        '{{ and 1 0 }} {{ or 0 "" }} {{ and 1 2 }} {{ or 0 3 }} {{ or .CommonLabels.nope "default" }}',
    ),
    (
        "and-short-circuits",
        "{{ if and .Alerts (gt (len .Alerts) 1) }}many{{ end }} {{ and false (index .Alerts 9) }}",
    ),
    (
        "not-compare",
        '{{ not 0 }} {{ ne .Status "firing" }} {{ ge 2 1 }} {{ le 1 1 }} {{ gt "b" "a" }} {{ lt 1 2 }}',
    ),
    ("eq-multi-and-nil", '{{ eq "a" "b" "a" }} {{ eq .Alerts nil }} {{ eq nil nil }}'),
    ("len-bytes", '{{ len "é" }} {{ index "é" 0 }} {{ slice "héllo" 1 3 }} {{ slice "abc" 1 }}'),
    ("index-slice-lists", "{{ (index .Alerts 1).Fingerprint }} {{ len (slice .Alerts 1) }}"),
    (
        "escapers",
        '{{ html "<a href=\'x\'>&+" }} {{ js "<a \'\\"\\\\x\\n=&" }} {{ urlquery "a b&c/é~" }}',
    ),
    ("html-of-missing", "{{ html .CommonLabels.nope }}|{{ print .CommonLabels.nope }}"),
    # printf
    (
        "printf-verbs",
        '{{ printf "%5.2f|%-5s|%05d|%x|%q|%v|%d|%s" 3.14159 "ab" 42 255 "hi\\n" .CommonLabels "x" 5 }}',
    ),
    (
        "printf-missing-extra",
        '{{ printf "%d %d" 1 }}|{{ printf "%d" 1 2 }}|{{ printf "%!" }}|{{ printf "%z" 1 }}',
    ),
    (
        "printf-types",
        '{{ printf "%v %+v %T" .CommonLabels.SortedPairs (index .CommonLabels.SortedPairs 0) .Alerts }}',
    ),
    ("printf-go-syntax", '{{ printf "%#v" .CommonLabels }}'),
    (
        "printf-bad-verbs",
        '{{ printf "%s" 3.5 }} {{ printf "%d" true }} {{ printf "%t" 1 }} {{ printf "%x" "hi" }} {{ printf "%X" -255 }} {{ printf "%08.3f" -3.14159 }}',
    ),
    ("printf-floats", '{{ printf "%e %g %.3g %G %E" 123456.789 0.000012345 3.14159 1e20 1.5 }}'),
    ("printf-runes", '{{ printf "%c %q %U %#U" 65 66 67 68 }}'),
    ("printf-width-precision", '{{ printf "%6.2s|%-6q|%+q" "héllo" "x" "é" }}'),
    (
        "printf-indexes-star",
        '{{ printf "%[2]d %[1]d" 1 2 }}|{{ printf "%*d" 5 1 }}|{{ printf "%v" nil }}',
    ),
    (
        "printf-slice-elements",
        '{{ printf "%q" .CommonLabels.Names }} {{ printf "%d" (index .Alerts 0).Labels }}',
    ),
    # Alertmanager functions
    ("case", '{{ title "hello wORLD-foo" }} {{ toUpper "héllo ß ﬁ" }} {{ toLower "ÀB İ" }}'),
    (
        "title-word-breaks",
        "{{ title `they're 1st o'neil hello_world foo.bar a-b x1y a,b a;b a:b a/b 日本abc ﬁx ǆx` }}",
    ),
    ("join-stringslice", '{{ stringSlice "a" "b" | join "," }} {{ join "-" .GroupLabels.Values }}'),
    ("match", '{{ match "^b" "abc" }} {{ match "b" "abc" }} {{ match "(?i)ABC" "xabcx" }}'),
    (
        "reReplaceAll",
        '{{ reReplaceAll "(a)" "$1x${1}y$$" "cat" }}|{{ reReplaceAll "a*" "-" "baaac" }}|{{ reReplaceAll "(?P<n>\\\\w+):(\\\\d+)" "${n}/$2" "host:9100" }}',
    ),
    ("kv-methods", '{{ .CommonLabels.Remove (stringSlice "job") }} {{ .CommonLabels.Values }}'),
    (
        "alerts-methods",
        "{{ len .Alerts.Firing }} {{ len .Alerts.Resolved }} {{ (index .Alerts.Resolved 0).Fingerprint }}",
    ),
    ("safeHtml-in-text", '{{ safeHtml "<b>" }}'),
    # time.Time
    (
        "time-print",
        "{{ range .Alerts }}{{ .StartsAt }}|{{ .EndsAt }}|{{ .StartsAt.Unix }}|{{ .EndsAt.UnixNano }};{{ end }}",
    ),
    (
        "time-format",
        '{{ range .Alerts }}{{ .StartsAt.Format "Mon Jan _2 15:04:05.000 MST 2006 -07:00 Z07:00 pm 3 03 .999 ,000 January Monday 002 __2" }};{{ end }}',
    ),
    (
        "time-methods",
        "{{ (index .Alerts 0).StartsAt.Month }} {{ (index .Alerts 0).StartsAt.Weekday }} {{ (index .Alerts 0).StartsAt.YearDay }} {{ (index .Alerts 0).StartsAt.UTC.IsZero }} {{ (index .Alerts 0).EndsAt.IsZero }}",
    ),
    (
        "time-arithmetic",
        "{{ (index .Alerts 1).EndsAt.Sub (index .Alerts 1).StartsAt }} {{ (index .Alerts 0).StartsAt.Add 3600000000000 }}",
    ),
    # Alertmanager's default templates
    ("default-subject", '{{ template "__subject" . }}|{{ template "__alertmanagerURL" . }}'),
    ("default-text-list", '{{ template "__text_alert_list" .Alerts }}'),
    (
        "default-slack",
        '{{ template "slack.default.fallback" . }}|{{ template "slack.default.username" . }}',
    ),
    (
        "none:default-subject",
        '{{ template "__subject" . }}|{{ template "__alertmanagerURL" . }}|{{ template "pagerduty.default.instances" .Alerts }}',
    ),
    (
        "user:override",
        '{{ template "__subject" . }} {{ template "mine" . }} {{ template "list" .Alerts }}',
    ),
    # parse errors
    ("err:unexpected-in-command", "{{ } }}"),
    ("err:bad-character", "{{ .Foo}x }}"),
    ("err:unclosed-action", "{{ .Foo"),
    ("err:unclosed-action-multiline", "line1\n{{ .Foo\n  | bar }}"),
    ("err:unterminated-string", '{{ "abc }}'),
    ("err:unterminated-raw", "{{ `abc }}"),
    ("err:unterminated-char", "{{ 'a }}"),
    ("err:unclosed-comment", "{{/* x }}"),
    ("err:comment-end", "{{/* x */ }}"),
    ("err:unexpected-end", "{{ end }}"),
    ("err:unexpected-else", "{{ else }}"),
    ("err:missing-value-if", "{{ if }}x{{ end }}"),
    ("err:eof-in-if", "{{ if . }}x"),
    ("err:double-else", "{{ range . }}x{{ else }}y{{ else }}z{{ end }}"),
    ("err:define-eof", '{{ define "a" }}x'),
    ("err:define-name", "{{ define a }}x{{ end }}"),
    ("err:multiple-definition", '{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}'),
    (
        "empty-redefinition-ignored",
        '{{ define "a" }}x{{ end }}{{ define "a" }} {{ end }}{{ template "a" }}',
    ),
    ("err:template-name", "{{ template x }}"),
    ("err:function-not-defined", "{{ humanize 1 }}"),
    ("err:trimSpace-is-0.26", '{{ trimSpace " x " }}'),
    ("err:undefined-variable", "{{ $x := 1 }}{{ $y }}"),
    ("err:non-executable", '{{ .A | 1 }}|{{ .A | "x" }}'),
    ("err:unclosed-paren", "{{ (1 }}"),
    ("err:unexpected-paren", "{{ 1) }}"),
    ("err:empty-pipe", "{{ .A.B.C | }}"),
    ("err:number", "{{ 1.2.3 }}"),
    ("err:hex", "{{ 0x }}"),
    ("err:number-letter", "{{ 1a }}"),
    ("err:dot-after-string", '{{ "x".Foo }}'),
    ("err:float-range", "{{ 1e400 }}"),
    ("err:int-overflow", "{{ 99999999999999999999 }}"),
    ("err:range-decls", "{{ range $x, $y, $z := . }}{{ end }}"),
    ("err:too-many-decls", "{{ $x, $y := . }}"),
    ("err:break-outside-range", "{{ break }}"),
    ("err:continue-outside-range", "{{ with . }}{{ continue }}{{ end }}"),
    ("err:break-args", "{{ range . }}{{ break 1 }}{{ end }}"),
    ("err:else-if-in-with", "{{ with . }}{{ else if . }}{{ end }}"),
    ("err:line-of-error", "line1\n{{ if . }}\nline3 {{ .Foo }\n{{ end }}"),
    ("err:string-newline", 'a\n{{ "x\n" }}'),
    ("err:bad-escape", '{{ "\\q" }}'),
    ("err:empty-char", "{{ '' }}"),
    ("err:colon", "{{ : }}"),
    ("err:unrecognized", "{{ \\ }}"),
    ("err:extra-end", "{{ if 1 }}a{{ else }}b{{ end }}{{ end }}"),
    # execution errors
    ("err:no-field", "{{ .Foo }}"),
    ("err:field-of-string", "{{ .Receiver.Foo }}"),
    ("err:chain-position", "{{ .Alerts.Firing.Firing }}"),
    ("err:template-not-defined", '{{ template "nope" }}'),
    ("err:range-int", "{{ range 5 }}x{{ end }}"),
    ("err:and-no-args", "{{ and }}"),
    ("err:eq-int-float", "{{ eq 1 1.0 }}"),
    ("err:lt-string-int", '{{ lt "a" 1 }}'),
    ("err:eq-no-args", "{{ eq 1 }}"),
    ("err:eq-slice-int", "{{ eq .Alerts 1 }}"),
    ("err:lt-bool", "{{ lt true false }}"),
    ("err:index-range", "{{ index .Alerts 5 }}"),
    ("err:index-type", '{{ index .Alerts "a" }}'),
    ("err:index-key-type", "{{ index .CommonLabels 1 }}"),
    ("err:index-nil", "{{ index nil 1 }}"),
    ("err:slice-order", '{{ slice "abc" 2 1 }}'),
    ("err:slice-3-string", '{{ slice "abc" 1 2 3 }}'),
    ("err:len-int", "{{ len 3 }}"),
    ("err:len-nil", "{{ len nil }}"),
    ("err:wrong-type", '{{ join "," .Alerts }}'),
    ("err:wrong-arg-literal", "{{ toUpper 1 }}"),
    ("err:arg-count", "{{ toUpper }}"),
    ("err:arg-count-2", '{{ toUpper "a" "b" }}'),
    ("err:html-type", '{{ safeHtml "<b>" | toUpper }}'),
    ("err:method-args", "{{ .Alerts.Firing 1 }}"),
    ("err:method-arg-count", "{{ .CommonLabels.Remove }}"),
    ("err:method-arg-type", '{{ .CommonLabels.Remove "x" }}'),
    ("err:field-args", "{{ .Status 1 }}"),
    ("err:map-args", "{{ .CommonLabels.alertname 1 }}"),
    ("err:nil-command", "{{ nil }}"),
    ("err:non-function", "{{ 1 2 }}"),
    ("err:call", "{{ call .Status }}"),
    ("err:regexp-compile", '{{ reReplaceAll "(" "" "x" }}'),
    ("err:regexp-match", '{{ match "(" "x" }}'),
    ("err:default-template-error", '{{ template "__subject" 1 }}'),
    ("err:in-define", '{{ define "t" }}\n{{ .Nope }}{{ end }}{{ template "t" . }}'),
    ("err:multiline-position", "x\n\n{{ .NoSuch.Foo }}"),
    ("err:time-multi-result", "{{ (index .Alerts 0).StartsAt.Date }}"),
    ("err:time-format-arg", "{{ (index .Alerts 0).StartsAt.Format 1 }}"),
    ("err:printf-first-arg", "{{ printf 1 }}"),
]

HTML_CASES: list[tuple[str, str]] = [
    (
        "text-and-attrs",
        '<a title={{ "" }} x="{{ "a b" }}" y={{ "a b=c" }}>{{ .CommonLabels.nope }}{{ "<&>\'\\"+" }}</a>',
    ),
    (
        "url-filter",
        '<a href="{{ "javascript:alert(1)" }}">{{ "<b>" | html }}{{ html "<b>" "+" }}{{ "+" }}</a>',
    ),
    (
        "url-query",
        '<a href="{{ .ExternalURL }}/#/alerts?receiver={{ "a b&c" | urlquery }}&x={{ "a b&c" }}">x</a>',
    ),
    (
        "url-path-and-safe-html",
        '<a href="/p/{{ "a b?c" }}">{{ safeHtml "<i>x</i>" }}</a><b title="{{ safeHtml "<i>x</i> &amp;" }}">',
    ),
    ("comments-removed", '<!-- {{ "x" }} -->a<!-- b -->c'),
    (
        "script",
        '<script>var x = {{ "a" }}; var y = "{{ "<q>" }}"; var n = {{ 5 }}; // {{ 1 }}\n /* c */ {{ .CommonLabels }}</script>',
    ),
    (
        "style",
        '<style>p { color: {{ "red" }}; } /* c */ p { color: {{ "x;y" }} }</style><p style="color: {{ "blue" }}">',
    ),
    ("rcdata", '<title>{{ "<t>+" }}</title><textarea>{{ safeHtml "<b>" }}</textarea>'),
    ("attr-names", '<a {{ "onclick" }}="x" {{ "title" }}="y">'),
    ("js-attr", '<a onclick="f({{ "x" }})">{{ . | printf "%T" }}</a>'),
    ("img", '<img src="{{ "http://x/a b" }}" alt="{{ 1.5 }}">'),
    ("js-comments", "<script>a/* c */b//x\nc</script><style>a/* c */b</style>"),
    ("js-values", '<script>a{{ 1 }}b{{ "s" }}c{{ .CommonLabels.job }}</script>'),
    ("empty-attrs", '<p title="{{ "" }}" x={{ "" }} y={{ "a" }}><a href="{{ "" }}">'),
    ("script-end", '<script>x="</script>{{ "<" }}'),
    ("comment-in-attr-kept", '<a href="x" onclick="/* c */ {{ "x" }}">'),
    (
        "alerts-list",
        '{{ range .Alerts }}<a href="{{ .GeneratorURL }}">{{ .Labels.alertname }}</a>{{ .Annotations.summary }}{{ end }}',
    ),
    ("values", "<p>{{ .Alerts | len }} {{ 1.5 }} {{ true }}</p><p>{{ . }}</p>"),
    (
        "schemes",
        '<a href="mailto:{{ "x@y" }}"><a href="{{ "mailto:x@y" }}"><a href="{{ "HTTPS://x" }}"><a href="{{ "/rel:x" }}">',
    ),
    ("quotes-and-case", '<a href=\'{{ "q\'x" }}\'><a href={{ "a b" }}>x</a><A HREF="{{ "x y" }}">'),
    (
        "url-like-attrs",
        '<p data-url="{{ "a b" }}" data-x="{{ "a b" }}" xlink:href="{{ "a b" }}" xmlns:foo="{{ "a b" }}">',
    ),
    ("attr-breakout", '<input value="{{ "\\"><script>" }}">'),
    ("percent", '<a href="{{ "%41%zz" }}?q={{ "%41" }}">'),
    ("nul", '<p>{{ "\\u0000" }}</p>'),
    (
        "nested-template",
        '{{ define "t" }}<b>{{ . }}</b>{{ end }}<p title="{{ template "t" "<x>" }}">{{ template "t" "<y>" }}</p>',
    ),
    (
        "predefined-escapers",
        '<p>{{ "a" | urlquery }}</p><a href="?x={{ "a b" | html }}"><a href="{{ "a b" | urlquery }}">',
    ),
    (
        "default-subject",
        '<title>{{ template "__subject" . }}</title><a href="{{ template "__alertmanagerURL" . }}">',
    ),
]


class _ValueData(Data):
    """Data passed by value, as amtool passes it (Alertmanager itself passes a pointer)."""

    go_type: ClassVar[GoType] = GoType("template.Data", Kind.STRUCT, comparable=False)


def corpus_data(name: str) -> Data:
    """One of DATA as the template data amtool executes with."""
    d = DATA[name]
    alerts = Alerts(
        Alert(
            Status=a["status"],
            Labels=KV(a["labels"]),
            Annotations=KV(a["annotations"]),
            StartsAt=GoTime.parse(a["startsAt"]),
            EndsAt=GoTime.parse(a["endsAt"]),
            GeneratorURL=a["generatorURL"],
            Fingerprint=a["fingerprint"],
        )
        for a in d["alerts"]
    )
    return _ValueData(
        Receiver=d["receiver"],
        Status=d["status"],
        Alerts=alerts,
        GroupLabels=KV(d["groupLabels"]),
        CommonLabels=KV(d["commonLabels"]),
        CommonAnnotations=KV(d["commonAnnotations"]),
        ExternalURL=d["externalURL"],
    )


def case_list() -> list[dict[str, Any]]:
    """Every case as {id, text, html, data, user_file} (expected output not included)."""
    cases = []
    for html, table in ((False, TEXT_CASES), (True, HTML_CASES)):
        for case_id, text in table:
            prefix, _, _ = case_id.partition(":")
            cases.append(
                {
                    "id": ("html:" if html else "") + case_id,
                    "text": text,
                    "html": html,
                    "data": "none" if prefix == "none" else "two",
                    "user_file": prefix == "user",
                }
            )
    return cases


def amtool_render(amtool: str, case: dict[str, Any], tmp: Path) -> str:
    """amtool's output for a case, or "ERR:" and its error message."""
    data = tmp / f"{case['data']}.json"
    data.write_text(json.dumps(DATA[case["data"]]))
    user = tmp / "user.tmpl"
    user.write_text(USER_FILE if case["user_file"] else "")
    args = [amtool, "template", "render", f"--template.text={case['text']}"]
    args += [f"--template.glob={AM_DEFAULTS}", f"--template.glob={user}", f"--template.data={data}"]
    if case["html"]:
        args.append("--template.type=html")
    done = subprocess.run(args, capture_output=True, check=False)
    if done.returncode:
        return "ERR:" + done.stderr.decode().removeprefix("amtool: error: ").rstrip("\n")
    return done.stdout.decode("utf-8", "surrogateescape")


def main() -> None:
    """Run every case through amtool and rewrite the corpus file."""
    amtool = sys.argv[1] if len(sys.argv) > 1 else "amtool"
    with tempfile.TemporaryDirectory() as tmp:
        cases = [{**c, "want": amtool_render(amtool, c, Path(tmp))} for c in case_list()]
    document = {
        "captured_with": "amtool 0.25.0 (Debian, go1.19.8) template render",
        "user_file": USER_FILE,
        "data": DATA,
        "cases": cases,
    }
    CORPUS_FILE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
