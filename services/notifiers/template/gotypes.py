"""Just enough of Go's type system for templates: type names, kinds, assignability, methods.

Template values are plain Python values (str, int, float, bool, list, dict, None for Go's
invalid/nil value) or objects whose class declares `go_type` (and optionally `go_fields` for
structs, `go_methods` for methods callable from templates, `go_string()` for fmt.Stringer).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANY",
    "ANY_MAP",
    "ANY_SLICE",
    "BOOL",
    "COMPLEX128",
    "FLOAT64",
    "HTML",
    "INT",
    "INT64",
    "REFLECT_VALUE",
    "STRING",
    "STRING_SLICE",
    "UINT8",
    "CallError",
    "Func",
    "GoType",
    "Kind",
    "StringSlice",
    "Uint8",
    "concrete_type",
    "go_fields",
    "go_methods",
    "type_of",
]


class Kind(enum.Enum):
    """reflect.Kind, reduced to what templates can meet."""

    BOOL = "bool"
    INT = "int"
    UINT = "uint"
    FLOAT = "float"
    COMPLEX = "complex"
    STRING = "string"
    SLICE = "slice"
    MAP = "map"
    STRUCT = "struct"
    INTERFACE = "interface"
    FUNC = "func"


@dataclass(frozen=True)
class GoType:
    """A Go type: `name` as Go prints it. Defined types (`int`, `template.KV`) are `defined`;
    those that are not predeclared name their `underlying` type."""

    name: str
    kind: Kind
    underlying: str = ""
    defined: bool = True
    elem: GoType | None = field(default=None, compare=False)
    key: GoType | None = field(default=None, compare=False)
    comparable: bool = True
    pointer: bool = False  # a pointer to a struct: printed as &{...}, fields reached through it

    @property
    def base(self) -> str:
        """The underlying type's name (the type's own name when it is not a named type)."""
        return self.underlying or self.name

    def assignable_to(self, other: GoType) -> bool:
        """Go's AssignableTo for the types templates meet (identical, or same underlying type)."""
        if other.kind is Kind.INTERFACE:
            return True
        if self.name == other.name:
            return True
        return self.base == other.base and (not self.defined or not other.defined)

    def __str__(self) -> str:
        return self.name


ANY = GoType("interface {}", Kind.INTERFACE, defined=False)
#: Builtins that take reflect.Value receive template values as they are, untyped nil included.
REFLECT_VALUE = GoType("reflect.Value", Kind.STRUCT)
BOOL = GoType("bool", Kind.BOOL)
INT = GoType("int", Kind.INT)
INT64 = GoType("int64", Kind.INT)
UINT8 = GoType("uint8", Kind.UINT)
FLOAT64 = GoType("float64", Kind.FLOAT)
COMPLEX128 = GoType("complex128", Kind.COMPLEX)
STRING = GoType("string", Kind.STRING)
STRING_SLICE = GoType("[]string", Kind.SLICE, elem=STRING, comparable=False, defined=False)
ANY_SLICE = GoType("[]interface {}", Kind.SLICE, elem=ANY, comparable=False, defined=False)
ANY_MAP = GoType(
    "map[string]interface {}", Kind.MAP, elem=ANY, key=STRING, comparable=False, defined=False
)


class Uint8(int):
    """A byte, as `index` returns for a string (printed as a number)."""

    go_type = UINT8


class StringSlice(list[str]):
    """A Go `[]string` (what `.Names`, `.Values` and `stringSlice` return)."""

    go_type = STRING_SLICE


class HTML(str):
    """html/template's `template.HTML`: markup that contextual escaping leaves alone."""

    go_type = GoType("template.HTML", Kind.STRING, underlying="string")

    __slots__ = ()


class CallError(Exception):
    """The error a template function returns; reported as `error calling NAME: message`."""


@dataclass(frozen=True)
class Func:
    """A function or method callable from a template, with its Go signature.

    `params` are the parameter types; with `variadic` the last one is the element type of the
    `...` parameter. `impl` raises CallError for Go's error result. `results` other than 1 make
    the call fail as in Go (`can't call method/function ... with N results`).
    """

    params: tuple[GoType, ...]
    impl: Callable[..., Any]
    variadic: bool = False
    results: int = 1


def type_of(value: object) -> GoType | None:
    """The Go type of a template value; None for Go's invalid value (untyped nil)."""
    if value is None:
        return None
    declared = getattr(type(value), "go_type", None)
    if isinstance(declared, GoType):
        return declared
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return FLOAT64
    if isinstance(value, complex):
        return COMPLEX128
    if isinstance(value, str):
        return STRING
    if isinstance(value, list | tuple):
        return ANY_SLICE
    if isinstance(value, Mapping):
        return ANY_MAP
    return GoType(type(value).__name__, Kind.FUNC if callable(value) else Kind.STRUCT)


def concrete_type(value: object) -> GoType:
    """The Go type of a value known not to be nil."""
    t = type_of(value)
    if t is None:
        raise TypeError("untyped nil has no type")
    return t


def go_fields(value: object) -> tuple[str, ...]:
    """The exported struct fields of a value, in declaration order (empty when not a struct)."""
    fields = getattr(type(value), "go_fields", ())
    return tuple(fields)


def go_methods(value: object) -> Mapping[str, Func]:
    """The methods a template may call on a value, by Go name."""
    methods = getattr(type(value), "go_methods", None)
    return methods if isinstance(methods, Mapping) else {}
