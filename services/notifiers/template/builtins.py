"""Go's template builtins (text/template funcs.go): and, or, not, len, index, slice, call,
print, printf, println, html, js, urlquery, eq, ne, lt, le, gt, ge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote_plus

from services.notifiers.template.gofmt import sprint, sprintf, sprintln
from services.notifiers.template.gotypes import (
    ANY,
    REFLECT_VALUE,
    STRING,
    CallError,
    Func,
    GoType,
    Kind,
    Uint8,
    concrete_type,
    type_of,
)

__all__ = ["BUILTINS", "is_true", "zero_value"]


def is_true(value: object) -> tuple[bool, bool]:
    """Go's truth of a value (the zero value of its type is false), and whether it has one."""
    if value is None:
        return False, True
    t = concrete_type(value)
    if t.kind in (Kind.STRING, Kind.SLICE, Kind.MAP):
        return len(value) > 0, True  # type: ignore[arg-type]
    if t.kind in (Kind.BOOL, Kind.INT, Kind.UINT, Kind.FLOAT, Kind.COMPLEX):
        return value != 0, True
    if t.kind is Kind.STRUCT:
        return True, True
    return False, False


def zero_value(t: GoType | None) -> object:
    """The zero value of a type (None stands for nil and for an empty interface)."""
    if t is None:
        return None
    return {Kind.STRING: "", Kind.INT: 0, Kind.UINT: 0, Kind.FLOAT: 0.0, Kind.BOOL: False}.get(
        t.kind
    )


def _eval_args(args: Sequence[object]) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return sprint(["<no value>" if a is None else a for a in args])


_HTML_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
_JS_ESCAPES |= {"&": "\\u0026", "=": "\\u003D"}


def _html(*args: object) -> str:
    return "".join(_HTML_ESCAPES.get(c, c) for c in _eval_args(args))


def _js_char(c: str) -> str:
    if c in _JS_ESCAPES:
        return _JS_ESCAPES[c]
    if c < " ":
        return f"\\u00{ord(c):02X}"
    if c >= "\x80" and not c.isprintable():
        return f"\\u{ord(c):04X}"
    return c


def _js(*args: object) -> str:
    return "".join(_js_char(c) for c in _eval_args(args))


def _urlquery(*args: object) -> str:
    return quote_plus(_eval_args(args), safe="~")


def _basic_kind(value: object) -> Kind | None:
    t = type_of(value)
    if t is None or t.kind not in (
        Kind.BOOL,
        Kind.INT,
        Kind.UINT,
        Kind.FLOAT,
        Kind.COMPLEX,
        Kind.STRING,
    ):
        return None
    return t.kind


def _eq(arg1: object, *rest: object) -> bool:
    if not rest:
        raise CallError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in rest:
        k2 = _basic_kind(arg)
        if k1 is not k2:
            if {k1, k2} == {Kind.INT, Kind.UINT}:
                truth = arg1 == arg
            elif arg1 is not None and arg is not None:
                raise CallError("incompatible types for comparison")
            else:
                truth = False
        elif k1 is not None:
            truth = arg1 == arg
        else:
            t1, t2 = type_of(arg1), type_of(arg)
            if t1 is not None and t2 is not None and t1.kind is not t2.kind:
                raise CallError(
                    f"non-comparable types {sprintf('%s', [arg1])}: {t1}, {t2}: "
                    + sprintf("%v", [arg])
                )
            if arg1 is None or arg is None:
                truth = arg1 is arg
            elif t2 is not None and not t2.comparable:
                raise CallError(f"non-comparable type {sprintf('%s', [arg])}: {t2}")
            else:
                truth = arg1 is arg if t2 is not None and t2.pointer else arg1 == arg
        if truth:
            return True
    return False


def _lt(arg1: object, arg2: object) -> bool:
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if k1 is None or k2 is None:
        raise CallError("invalid type for comparison")
    if k1 is not k2:
        if {k1, k2} == {Kind.INT, Kind.UINT}:
            return bool(arg1 < arg2)  # type: ignore[operator]
        raise CallError("incompatible types for comparison")
    if k1 in (Kind.BOOL, Kind.COMPLEX):
        raise CallError("invalid type for comparison")
    return bool(arg1 < arg2)  # type: ignore[operator]


def _le(arg1: object, arg2: object) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _length(item: object) -> int:
    if item is None:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    t = concrete_type(item)
    if t.kind is Kind.STRING:
        return len(str(item).encode("utf-8", "surrogateescape"))
    if t.kind in (Kind.SLICE, Kind.MAP):
        return len(item)  # type: ignore[arg-type]
    raise CallError(f"len of type {t}")


def _index_arg(index: object, cap: int) -> int:
    t = type_of(index)
    if t is None:
        raise CallError("cannot index slice/array with nil")
    if t.kind not in (Kind.INT, Kind.UINT) or not isinstance(index, int):
        raise CallError(f"cannot index slice/array with type {t}")
    x = int(index)
    if x < 0 or x > cap:
        raise CallError(f"index out of range: {x}")
    return x


def _index(item: object, *indexes: object) -> object:
    if item is None:
        raise CallError("index of untyped nil")
    for index in indexes:
        t = concrete_type(item)
        if t.kind is Kind.STRING:
            data = str(item).encode("utf-8", "surrogateescape")
            x = _index_arg(index, len(data))
            if x == len(data):
                raise CallError(f"index out of range: {x}")
            item = Uint8(data[x])
        elif t.kind is Kind.SLICE:
            seq: Sequence[object] = item  # type: ignore[assignment]
            x = _index_arg(index, len(seq))
            if x == len(seq):
                raise CallError(f"index out of range: {x}")
            item = seq[x]
        elif t.kind is Kind.MAP:
            key_type = t.key or STRING
            kt = type_of(index)
            if kt is None:
                raise CallError(f"value is nil; should be of type {key_type}")
            if not kt.assignable_to(key_type):
                raise CallError(f"value has type {kt}; should be {key_type}")
            mapping: Mapping[object, object] = item  # type: ignore[assignment]
            item = mapping[index] if index in mapping else zero_value(t.elem)
        else:
            raise CallError(f"can't index item of type {t}")
    return item


def _slice(item: object, *indexes: object) -> object:
    if item is None:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    t = concrete_type(item)
    if t.kind is Kind.STRING:
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data = str(item).encode("utf-8", "surrogateescape")
    elif t.kind is Kind.SLICE:
        data = item  # type: ignore[assignment]
    else:
        raise CallError(f"can't slice item of type {t}")
    idx = [0, len(data), len(data)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(data))
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = data[idx[0] : idx[1]]
    if isinstance(part, bytes):
        return part.decode("utf-8", "replace")
    return type(item)(part) if isinstance(item, list) else list(part)


def _call(fn: object, *args: object) -> object:
    if fn is None:
        raise CallError("call of nil")
    raise CallError(f"non-function of type {type_of(fn)}")


def _not(value: object) -> bool:
    return not is_true(value)[0]


_RV2 = (REFLECT_VALUE, REFLECT_VALUE)
BUILTINS: Mapping[str, Func] = {
    "and": Func(_RV2, lambda *a: a[-1], variadic=True),
    "or": Func(_RV2, lambda *a: a[-1], variadic=True),
    "not": Func((REFLECT_VALUE,), _not),
    "len": Func((REFLECT_VALUE,), _length),
    "index": Func(_RV2, _index, variadic=True),
    "slice": Func(_RV2, _slice, variadic=True),
    "call": Func(_RV2, _call, variadic=True),
    "print": Func((ANY,), lambda *a: sprint(a), variadic=True),
    "printf": Func((STRING, ANY), lambda f, *a: sprintf(f, a), variadic=True),
    "println": Func((ANY,), lambda *a: sprintln(a), variadic=True),
    "html": Func((ANY,), _html, variadic=True),
    "js": Func((ANY,), _js, variadic=True),
    "urlquery": Func((ANY,), _urlquery, variadic=True),
    "eq": Func(_RV2, _eq, variadic=True),
    "ne": Func(_RV2, lambda a, b: not _eq(a, b)),
    "lt": Func(_RV2, _lt),
    "le": Func(_RV2, _le),
    "gt": Func(_RV2, lambda a, b: not _le(a, b)),
    "ge": Func(_RV2, lambda a, b: not _lt(a, b)),
}
