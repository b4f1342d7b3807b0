"""Go text/template for notification templates, with Alertmanager 0.25's data and functions.

`TemplateSet.default()` holds the built-in templates (`__subject`, `slack.default.title`, ...);
`parse_files` adds a config's `templates:` files; `render` / `render_html` run a receiver
field with the `Data` that `template_data` builds from a notification's alerts.
"""

from services.notifiers.template.data import KV, Alert, AlertLike, Data, template_data
from services.notifiers.template.errors import (
    TemplateError,
    TemplateExecError,
    TemplateSyntaxError,
)
from services.notifiers.template.templateset import TemplateSet

__all__ = [
    "KV",
    "Alert",
    "AlertLike",
    "Data",
    "TemplateError",
    "TemplateExecError",
    "TemplateSet",
    "TemplateSyntaxError",
    "template_data",
]
