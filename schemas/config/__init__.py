"""The routing configuration: an alertmanager.yml, loaded and validated as Alertmanager 0.25."""

from schemas.config.matchers import Matcher, MatcherError, MatchType, parse_matchers

__all__ = ["MatchType", "Matcher", "MatcherError", "parse_matchers"]
