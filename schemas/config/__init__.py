"""The routing configuration: an alertmanager.yml, loaded and validated as Alertmanager 0.25."""

from schemas.config.config import Config, GlobalConfig
from schemas.config.errors import ConfigError, ConfigProblem
from schemas.config.inhibit import InhibitRule
from schemas.config.lint import LintWarning, lint
from schemas.config.loader import load, loads
from schemas.config.matchers import Matcher, MatcherError, MatchType, parse_matchers
from schemas.config.receivers import Receiver
from schemas.config.route import Route
from schemas.config.timeinterval import TimeIntervalSet

__all__ = [
    "Config",
    "ConfigError",
    "ConfigProblem",
    "GlobalConfig",
    "InhibitRule",
    "LintWarning",
    "MatchType",
    "Matcher",
    "MatcherError",
    "Receiver",
    "Route",
    "TimeIntervalSet",
    "lint",
    "load",
    "loads",
    "parse_matchers",
]
