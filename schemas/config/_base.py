"""The base of every config model, and pydantic errors reworded as Go's YAML decoder words them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from schemas.config.errors import YamlPath

__all__ = ["ConfigModel", "FieldProblem", "Issue", "translate", "yaml_kind"]

Issue = tuple[YamlPath, str]
"""A problem inside one model: the path below the model, and the message."""


class FieldProblem(ValueError):
    """A check of a whole model that blames one of its fields (path relative to the model)."""

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.message = message
        self.path: YamlPath = path


class ConfigModel(BaseModel):
    """Frozen, strict about unknown keys; a key given as YAML null counts as absent (yaml.v2)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict) or None not in data.values():
            return data
        known = {info.alias or name for name, info in cls.model_fields.items()}
        return {k: v for k, v in data.items() if v is not None or k not in known}


_TARGETS = {
    "bool_parsing": "bool",
    "bool_type": "bool",
    "int_parsing": "int",
    "int_type": "int",
    "int_from_float": "int",
    "list_type": "list",
    "tuple_type": "list",
    "dict_type": "map",
    "model_type": "map",
    "model_attributes_type": "map",
    "string_type": "string",
}


def yaml_kind(value: Any, *, show: bool = False) -> str:
    """The YAML tag Go's decoder names for a value (`!!map`, `!!seq`, ``!!str `x` ``)."""
    if isinstance(value, dict):
        return "!!map"
    if isinstance(value, list):
        return "!!seq"
    if value is None:
        return "!!null"
    return f"!!str `{value}`" if show else "!!str"


def _one(error: Any) -> Issue:
    loc: YamlPath = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "value_error":
        cause = error["ctx"]["error"]
        if isinstance(cause, FieldProblem):
            return (*loc, *cause.path), cause.message
        return loc, str(cause)
    if kind == "extra_forbidden":
        return loc, f"field {loc[-1]} not found"
    if kind == "missing":
        return loc, "missing required field"
    if kind == "greater_than_equal" and error["ctx"].get("ge") == 0:
        return loc, f"cannot unmarshal !!int `{error['input']}` into uint64"
    target = _TARGETS.get(kind)
    if target is not None:
        # only bool and int fields show the value: a string field may hold a secret
        shown = yaml_kind(error["input"], show=target in ("bool", "int"))
        return loc, f"cannot unmarshal {shown} into {target}"
    return loc, str(error["msg"])


def translate(exc: ValidationError, prefix: YamlPath = ()) -> list[Issue]:
    """Each error of `exc` as (YAML path, message), the path prefixed by `prefix`."""
    out: list[Issue] = []
    for error in exc.errors(include_url=False):
        path, message = _one(error)
        out.append(((*prefix, *path), message))
    return out
