"""The remediation policy (targets, rules, limits) and the results that remediation actions report.

A policy names its targets; a rule picks one by name or by a label whose value must name a
configured target, so an alert's labels never supply a host. `load_policy` reads YAML and raises
`ConfigError` whose problems name the file and the YAML path of each offending key.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.config.duration import parse_duration
from schemas.config.env import UnsetVariableError, expand_env
from schemas.config.errors import ConfigError, ConfigProblem, YamlPath, format_path
from schemas.config.matchers import Matcher, MatcherError, matches_all, parse_matchers

__all__ = [
    "ActionName",
    "ActionResult",
    "AppTarget",
    "CacheFlushParams",
    "CacheFlushResult",
    "CacheFlushRule",
    "GlobalLimits",
    "GpuDeviceMemory",
    "GpuEmptyCacheParams",
    "GpuEmptyCacheResult",
    "GpuEmptyCacheRule",
    "Mode",
    "Policy",
    "PoolResizeParams",
    "PoolResizeResult",
    "PoolResizeRule",
    "PostgresTarget",
    "RedisTarget",
    "Rule",
    "RuleLimits",
    "SecretDsn",
    "TargetKind",
    "TemporaryEvictionPolicy",
    "TerminateIdleParams",
    "TerminateIdleResult",
    "TerminateIdleRule",
    "TerminatedSession",
    "load_policy",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class ActionName(enum.StrEnum):
    """The closed set of remediation actions."""

    REDIS_CACHE_FLUSH = "redis.cache_flush"
    POSTGRES_TERMINATE_IDLE = "postgres.terminate_idle"
    APP_POOL_RESIZE = "app.pool_resize"
    GPU_EMPTY_CACHE = "gpu.empty_cache"


class TargetKind(enum.StrEnum):
    """Which `targets:` section an action's target comes from."""

    REDIS = "redis"
    POSTGRES = "postgres"
    APP = "apps"


ACTION_TARGET_KIND: Mapping[ActionName, TargetKind] = {
    ActionName.REDIS_CACHE_FLUSH: TargetKind.REDIS,
    ActionName.POSTGRES_TERMINATE_IDLE: TargetKind.POSTGRES,
    ActionName.APP_POOL_RESIZE: TargetKind.APP,
    ActionName.GPU_EMPTY_CACHE: TargetKind.APP,
}


class Mode(enum.StrEnum):
    """Whether a rule acts on its own, waits for an approval, or only reports what it would do."""

    AUTO = "auto"
    APPROVAL = "approval"
    DRY_RUN = "dry-run"


# --- secrets -------------------------------------------------------------------------------


class SecretDsn(SecretStr):
    """A URL or DSN whose password is hidden in str(), repr() and dumps (the rest stays visible)."""

    def _display(self) -> str:
        return _mask_password(self.get_secret_value())


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _dsn(schemes: tuple[str, ...]) -> Any:
    def check(value: Any) -> SecretDsn:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            raise ValueError("must be a string")  # never echo the value: it may hold a password
        parts = urlsplit(raw)
        if parts.scheme not in schemes:
            raise ValueError(f"scheme must be one of {', '.join(schemes)}")
        if not parts.hostname:
            raise ValueError("must name a host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("invalid port") from None
        return SecretDsn(raw)

    return check


RedisUrl = Annotated[
    SecretDsn,
    BeforeValidator(_dsn(("redis", "rediss"))),
    PlainSerializer(str, return_type=str),
]
PostgresDsn = Annotated[
    SecretDsn,
    BeforeValidator(_dsn(("postgres", "postgresql"))),
    PlainSerializer(str, return_type=str),
]


def _seconds(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
"""Seconds, as a number or a Prometheus duration (`30s`, `5m`)."""


# --- targets -------------------------------------------------------------------------------


class RedisTarget(_Model):
    """A Redis server (and database, from the URL path) that `redis.*` actions may touch."""

    url: RedisUrl


class PostgresTarget(_Model):
    """A PostgreSQL server that `postgres.*` actions connect to (a role allowed to terminate)."""

    dsn: PostgresDsn


def _agent_url(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # pydantic reports the wrong type
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("scheme must be one of http, https")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (use secret or secret_file)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("invalid port") from None
    return value


AgentUrl = Annotated[str, BeforeValidator(_agent_url)]


class AppTarget(_Model):
    """An application running the Tocsin agent, which performs `app.*` and `gpu.*` actions.

    Requests are signed with a shared secret, given inline or (better) as a file read on use.
    """

    url: AgentUrl = Field(description="the agent's base URL, e.g. http://api:8000/tocsin-agent/")
    secret: SecretStr | None = None
    secret_file: Path | None = None
    timeout: Seconds = 10.0

    @model_validator(mode="after")
    def _one_secret(self) -> AppTarget:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("exactly one of secret, secret_file must be set")
        if self.secret is not None and not self.secret.get_secret_value():
            raise _Problems([(("secret",), "must not be empty")])
        return self

    def secret_bytes(self) -> bytes:
        """The shared secret, inline or a file's content less its trailing newline."""
        if self.secret is not None:
            return self.secret.get_secret_value().encode()
        if self.secret_file is None:  # unreachable: the validator requires one of the two
            raise ValueError("no agent secret configured")
        raw = self.secret_file.read_bytes().rstrip(b"\r\n")
        if not raw:
            raise ValueError(f"agent secret file {self.secret_file} is empty")
        return raw


class Targets(_Model):
    """Every target, by kind and name."""

    redis: dict[str, RedisTarget] = {}
    postgres: dict[str, PostgresTarget] = {}
    apps: dict[str, AppTarget] = {}

    def names(self, kind: TargetKind) -> frozenset[str]:
        """The names of the targets of one kind."""
        if kind is TargetKind.REDIS:
            return frozenset(self.redis)
        if kind is TargetKind.POSTGRES:
            return frozenset(self.postgres)
        return frozenset(self.apps)


# --- params per action ---------------------------------------------------------------------


class TemporaryEvictionPolicy(_Model):
    """A maxmemory-policy set for a while and then reverted to the value it replaced."""

    policy: Literal["allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu"] = "allkeys-lru"
    revert_after: Seconds


class CacheFlushParams(_Model):
    """`redis.cache_flush`: UNLINK the keys matching `patterns`, scanned `batch_size` at a time."""

    patterns: list[str] = Field(min_length=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_keys: int = Field(default=1_000_000, ge=1)
    allow_flushdb: bool = False
    temporary_policy: TemporaryEvictionPolicy | None = None
    memory_samples: int = Field(default=64, ge=0, le=10_000)

    @field_validator("patterns")
    @classmethod
    def _no_match_all(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern:
                raise ValueError("a pattern must not be empty")
        return patterns

    @model_validator(mode="after")
    def _match_all_needs_flushdb(self) -> CacheFlushParams:
        if "*" in self.patterns and not self.allow_flushdb:
            raise _Problems([(("patterns",), "pattern '*' deletes every key: needs allow_flushdb")])
        return self


class TerminateIdleParams(_Model):
    """`postgres.terminate_idle`: end sessions in `state` for over `idle_seconds`, filtered."""

    idle_seconds: Seconds
    state: Literal["idle in transaction", "idle"] = "idle in transaction"
    application_names: list[str] = []
    users: list[str] = []
    databases: list[str] = []
    max_sessions: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _needs_a_filter(self) -> TerminateIdleParams:
        if not (self.application_names or self.users or self.databases):
            raise ValueError("needs at least one of application_names, users, databases")
        return self


class PoolResizeParams(_Model):
    """`app.pool_resize`: set the app's connection pool size, bounded, and maybe revert it later.

    The new size is the larger of `current + grow_by` and `size` (whichever are set), clamped to
    [`min_size`, `max_size`]. With `revert_after`, the previous size is restored after that long
    unless someone changed the size meanwhile.
    """

    grow_by: int | None = Field(default=None, ge=1)
    size: int | None = Field(default=None, ge=1)
    min_size: int = Field(default=1, ge=1)
    max_size: int = Field(ge=1)
    revert_after: Seconds | None = None

    @model_validator(mode="after")
    def _bounded(self) -> PoolResizeParams:
        problems: list[tuple[YamlPath, str]] = []
        if self.grow_by is None and self.size is None:
            problems.append(((), "needs at least one of grow_by, size"))
        if self.min_size > self.max_size:
            problems.append((("min_size",), f"must not exceed max_size ({self.max_size})"))
        elif self.size is not None and not self.min_size <= self.size <= self.max_size:
            problems.append(
                (
                    ("size",),
                    f"must lie between min_size and max_size ({self.min_size}..{self.max_size})",
                )
            )
        if problems:
            raise _Problems(problems)
        return self

    def new_size(self, current: int) -> int:
        """The size to set when the pool's maximum is `current` now."""
        proposals = [current + self.grow_by] if self.grow_by is not None else []
        if self.size is not None:
            proposals.append(self.size)
        return min(self.max_size, max(self.min_size, *proposals))


class GpuEmptyCacheParams(_Model):
    """`gpu.empty_cache`: no parameters; the app's hook decides what its caches are."""


# --- rules ---------------------------------------------------------------------------------


class RuleLimits(_Model):
    """Per-rule bounds: the action's timeout, the cooldown per target, runs per hour per target."""

    timeout: Seconds = 30.0
    cooldown: Seconds = 300.0
    max_per_hour_per_target: int = Field(default=3, ge=1)


class GlobalLimits(_Model):
    """Bounds over every rule: runs per hour in total and actions running at once."""

    max_per_hour: int = Field(default=20, ge=1)
    max_concurrent: int = Field(default=4, ge=1)


def _matcher_list(value: Any) -> Any:
    if not isinstance(value, list):
        return value  # pydantic reports the wrong type
    out: list[Matcher] = []
    problems: list[tuple[YamlPath, str]] = []
    for index, line in enumerate(value):
        if not isinstance(line, str):
            problems.append(((index,), "must be a string"))
            continue
        try:
            out.extend(parse_matchers(line))
        except MatcherError as exc:
            problems.append(((index,), str(exc)))
    if problems:
        raise _Problems(problems)
    return tuple(out)


Matchers = Annotated[
    tuple[Matcher, ...],
    BeforeValidator(_matcher_list),
    PlainSerializer(lambda ms: [str(m) for m in ms], return_type=list[str]),
]


class _RuleBase(_Model):
    name: str = Field(min_length=1)
    matchers: Matchers = Field(min_length=1)
    target: str | None = None
    target_label: str | None = None
    mode: Mode = Mode.APPROVAL
    limits: RuleLimits = RuleLimits()

    @model_validator(mode="after")
    def _one_target(self) -> _RuleBase:
        if (self.target is None) == (self.target_label is None):
            raise ValueError("exactly one of target, target_label must be set")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with these labels falls under this rule."""
        return matches_all(self.matchers, labels)


class CacheFlushRule(_RuleBase):
    """A rule running `redis.cache_flush`."""

    action: Literal[ActionName.REDIS_CACHE_FLUSH]
    params: CacheFlushParams


class TerminateIdleRule(_RuleBase):
    """A rule running `postgres.terminate_idle`."""

    action: Literal[ActionName.POSTGRES_TERMINATE_IDLE]
    params: TerminateIdleParams


class PoolResizeRule(_RuleBase):
    """A rule running `app.pool_resize` through the app's agent."""

    action: Literal[ActionName.APP_POOL_RESIZE]
    params: PoolResizeParams


class GpuEmptyCacheRule(_RuleBase):
    """A rule running `gpu.empty_cache` through the app's agent."""

    action: Literal[ActionName.GPU_EMPTY_CACHE]
    params: GpuEmptyCacheParams = GpuEmptyCacheParams()


Rule = Annotated[
    CacheFlushRule | TerminateIdleRule | PoolResizeRule | GpuEmptyCacheRule,
    Field(discriminator="action"),
]


class Policy(_Model):
    """The whole remediation policy, cross-checked: rule names unique, targets defined."""

    targets: Targets = Targets()
    limits: GlobalLimits = GlobalLimits()
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _cross_check(self) -> Policy:
        problems: list[tuple[YamlPath, str]] = []
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                problems.append((("rules", index, "name"), f"duplicate rule name {rule.name!r}"))
            seen.add(rule.name)
            kind = ACTION_TARGET_KIND[rule.action]
            if rule.target is not None and rule.target not in self.targets.names(kind):
                problems.append(
                    (
                        ("rules", index, "target"),
                        f"unknown {kind.value} target {rule.target!r} for {rule.action.value}",
                    )
                )
        if problems:
            raise _Problems(problems)
        return self

    def target_for(self, rule: Rule, labels: Mapping[str, str]) -> str | None:
        """The configured target a rule acts on for an alert; None when the label names none."""
        if rule.target is not None:
            return rule.target
        name = labels.get(rule.target_label or "", "")
        known = self.targets.names(ACTION_TARGET_KIND[rule.action])
        return name if name in known else None

    def matching(self, labels: Mapping[str, str]) -> list[Rule]:
        """The rules whose matchers an alert's labels satisfy, in file order."""
        return [rule for rule in self.rules if rule.matches(labels)]


# --- results -------------------------------------------------------------------------------


class CacheFlushResult(_Model):
    """What `redis.cache_flush` did and measured."""

    action: Literal[ActionName.REDIS_CACHE_FLUSH] = ActionName.REDIS_CACHE_FLUSH
    target: str
    keys_deleted: int
    flushdb: bool = False
    bytes_freed: int = Field(description="INFO used_memory before minus after")
    sampled_bytes_per_key: float | None = Field(
        default=None, description="mean MEMORY USAGE of the sampled deleted keys"
    )
    used_memory_before: int
    used_memory_after: int
    maxmemory: int
    memory_ratio_before: float | None = None
    memory_ratio_after: float | None = None
    policy_set: str | None = None
    policy_previous: str | None = None
    policy_revert_at: float | None = None


class TerminatedSession(_Model):
    """One backend ended by `postgres.terminate_idle`."""

    pid: int
    user: str | None
    application: str
    database: str | None
    state: str
    idle_seconds: float


class TerminateIdleResult(_Model):
    """What `postgres.terminate_idle` ended, and how many matching sessions remained after."""

    action: Literal[ActionName.POSTGRES_TERMINATE_IDLE] = ActionName.POSTGRES_TERMINATE_IDLE
    target: str
    terminated: list[TerminatedSession]
    remaining: int


class PoolResizeResult(_Model):
    """What `app.pool_resize` changed, and the pool's utilization (active / max) around it."""

    action: Literal[ActionName.APP_POOL_RESIZE] = ActionName.APP_POOL_RESIZE
    target: str
    previous_size: int
    new_size: int
    changed: bool
    active_before: int
    active_after: int
    utilization_before: float | None
    utilization_after: float | None
    waiting_before: int
    waiting_after: int
    revert_at: float | None = Field(default=None, description="clock seconds; None: kept")
    revert_to: int | None = None


class GpuDeviceMemory(_Model):
    """One CUDA device's allocator figures (bytes) before and after emptying the cache."""

    index: int
    allocated_before: int
    allocated_after: int
    reserved_before: int
    reserved_after: int


class GpuEmptyCacheResult(_Model):
    """What `gpu.empty_cache` freed; `gpu` False (detail "no GPU") when the app has none."""

    action: Literal[ActionName.GPU_EMPTY_CACHE] = ActionName.GPU_EMPTY_CACHE
    target: str
    gpu: bool
    detail: str
    devices: list[GpuDeviceMemory] = []
    bytes_freed: int = Field(default=0, description="reserved bytes before minus after, summed")


ActionResult = Annotated[
    CacheFlushResult | TerminateIdleResult | PoolResizeResult | GpuEmptyCacheResult,
    Field(discriminator="action"),
]


# --- loading -------------------------------------------------------------------------------


class _Problems(ValueError):
    """Problems found by one validator, each with a path relative to the validated value."""

    def __init__(self, problems: list[tuple[YamlPath, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


_ACTION_TAGS = frozenset(a.value for a in ActionName)


def _issues(exc: ValidationError) -> list[tuple[YamlPath, str]]:
    out: list[tuple[YamlPath, str]] = []
    for error in exc.errors(include_url=False):
        # a discriminated union puts the tag into the location; the YAML has no such key
        loc: YamlPath = tuple(p for p in error["loc"] if p not in _ACTION_TAGS)
        kind = error["type"]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _Problems):
            out.extend(((*loc, *path), message) for path, message in cause.problems)
        elif kind == "union_tag_invalid":
            expected = ", ".join(sorted(_ACTION_TAGS))
            tag = error["ctx"]["tag"]
            out.append(((*loc, "action"), f"unknown action {tag!r} (one of {expected})"))
        elif kind == "union_tag_not_found":
            out.append(((*loc, "action"), "missing required field"))
        elif kind == "extra_forbidden":
            out.append((loc, "unknown field"))
        elif kind == "missing":
            out.append((loc, "missing required field"))
        elif isinstance(cause, ValueError):
            out.append((loc, str(cause)))
        else:
            out.append((loc, str(error["msg"])))
    return out


def _expand_targets(data: Any, env: Mapping[str, str], source: str) -> Any:
    """`$VAR`/`${VAR}` in the strings under `targets:` (URLs, DSNs, secrets) from `env`.

    Only targets: matchers are regexes, where `$` is an anchor."""
    if not isinstance(data, dict) or not isinstance(data.get("targets"), dict):
        return data
    problems: list[ConfigProblem] = []

    def walk(value: Any, path: YamlPath) -> Any:
        if isinstance(value, str):
            try:
                return expand_env(value, env)
            except UnsetVariableError as exc:
                problems.append(ConfigProblem(source, None, format_path(path), str(exc)))
                return value
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    expanded = {**data, "targets": walk(data["targets"], ("targets",))}
    if problems:
        raise ConfigError(problems)
    return expanded


def parse_policy(
    data: Any, source: str = "<policy>", env: Mapping[str, str] | None = None
) -> Policy:
    """Validate already-parsed YAML data as a Policy; ConfigError naming each YAML path.

    Strings under `targets:` may use `$VAR`/`${VAR}` (`$$` for a `$`), taken from `env`
    (default: the process environment); an unset variable is an error naming it."""
    data = _expand_targets(data, os.environ if env is None else env, source)
    try:
        return Policy.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(
            ConfigProblem(source, None, format_path(path), message)
            for path, message in _issues(exc)
        ) from None


def load_policy(path: str | Path, env: Mapping[str, str] | None = None) -> Policy:
    """Read and validate the policy file at `path`; ConfigError naming the file and YAML paths."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "", exc.strerror or str(exc))]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(str(path), None, "", f"yaml: {exc}")]) from None
    return parse_policy(data, str(path), env)
