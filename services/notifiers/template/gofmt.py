"""Go's fmt package as templates use it: Sprint, Sprintln, Sprintf and the %v of Go values.

Maps print as `map[a:1 b:2]` (sorted keys), slices as `[a b]`, structs as `{a b}`, a pointer to
a struct as `&{...}`, fmt.Stringer values (time.Time, ...) through their String method, and a
verb that does not fit its operand as `%!d(string=x)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.notifiers.template.gotypes import Kind, concrete_type, go_fields, type_of

__all__ = ["format_value", "go_quote", "go_unicode_repr", "sprint", "sprintf", "sprintln"]

_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _escape_rune(ch: str, quote: str, ascii_only: bool) -> str:
    if ch == quote or ch == "\\":
        return "\\" + ch
    code = ord(ch)
    if ch.isprintable() and not (ascii_only and code >= 0x80) and not 0xD800 <= code < 0xE000:
        return ch
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    if code < 0x80 or 0xDC80 <= code < 0xDD00:  # a control character, or a byte of bad UTF-8
        return f"\\x{code & 0xFF:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(text: str, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII): a double-quoted Go string literal."""
    return '"' + "".join(_escape_rune(ch, '"', ascii_only) for ch in text) + '"'


def _quote_rune(code: int, ascii_only: bool = False) -> str:
    if not 0 <= code <= 0x10FFFF or 0xD800 <= code < 0xE000:
        code = 0xFFFD
    return "'" + _escape_rune(chr(code), "'", ascii_only) + "'"


def go_unicode_repr(ch: str) -> str:
    """Go's `%#U` of a rune: `U+0041 'A'` (the quoted form only when printable)."""
    if not ch:
        return "U+FFFFFFFFFFFFFFFF"  # Go's eof rune (-1) printed as %#U
    code = ord(ch)
    return f"U+{code:04X} '{ch}'" if ch.isprintable() else f"U+{code:04X}"


def _shortest_float(value: float, upper: bool = False) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64): shortest digits, exponent form outside [1e-4, 1e6)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + int(exponent)  # position of the decimal point relative to the digits
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:  # Go decides with precision 6 when printing the shortest digits
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        e = "E" if upper else "e"
        return f"{prefix}{mantissa}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


@dataclass
class _Flags:
    plus: bool = False
    minus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    wid: int | None = None
    prec: int | None = None
    plus_v: bool = False
    sharp_v: bool = False


class _Printer:
    """One fmt call's state, as Go's `pp`/`fmt` pair keeps it."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.f = _Flags()

    # padding -------------------------------------------------------------------------------
    def pad(self, text: str) -> None:
        f = self.f
        if f.wid is None or f.wid <= len(text):
            self.buf.append(text)
            return
        fill = ("0" if f.zero else " ") * (f.wid - len(text))
        self.buf.append(text + fill if f.minus else fill + text)

    # scalar formatters ---------------------------------------------------------------------
    def fmt_string(self, text: str, verb: str) -> None:
        f = self.f
        if verb == "v" and f.sharp_v:
            self.pad(go_quote(text))
        elif verb in "vs":
            self.pad(text if f.prec is None else text[: f.prec])
        elif verb in "xX":
            data = (text if f.prec is None else text[: f.prec]).encode("utf-8", "surrogateescape")
            parts = [f"{b:02x}" if verb == "x" else f"{b:02X}" for b in data]
            prefix = ("0x" if verb == "x" else "0X") if f.sharp else ""
            self.pad(" ".join(prefix + p for p in parts) if f.space else prefix + "".join(parts))
        elif verb == "q":
            if f.sharp and "`" not in text and all(c == "\t" or c.isprintable() for c in text):
                self.pad("`" + text + "`")
            else:
                self.pad(go_quote(text if f.prec is None else text[: f.prec], ascii_only=f.plus))
        else:
            self.bad_verb(verb, text)

    def fmt_integer(self, value: int, verb: str, signed: bool = True) -> None:
        f = self.f
        if verb == "c":
            self.pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd")
            return
        if verb == "q":
            self.pad(_quote_rune(value, ascii_only=f.plus))
            return
        if verb == "U":
            text = f"U+{value:04X}"
            if f.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
                text += f" '{chr(value)}'"
            self.pad(text)
            return
        bases = {"v": 10, "d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}
        if verb not in bases:
            self.bad_verb(verb, value)
            return
        negative = value < 0
        digits = format(abs(value), {2: "b", 8: "o", 10: "d", 16: "x"}[bases[verb]])
        if verb == "X":
            digits = digits.upper()
        if f.prec is not None:
            if f.prec == 0 and value == 0:
                self.buf.append(" " * (f.wid or 0))
                return
            digits = digits.rjust(f.prec, "0")
        elif f.zero and f.wid is not None and not f.minus:
            room = f.wid - (1 if negative or f.plus or f.space else 0)
            digits = digits.rjust(room, "0")
        if f.sharp and verb in "xX":
            digits = ("0x" if verb == "x" else "0X") + digits
        elif f.sharp and verb == "b":
            digits = "0b" + digits
        elif (f.sharp and verb == "o" and not digits.startswith("0")) or verb == "O":
            digits = ("0o" if verb == "O" else "0") + digits
        sign = "-" if negative else "+" if f.plus else " " if f.space else ""
        zero, f.zero = f.zero, False
        self.pad(sign + digits)
        f.zero = zero

    def fmt_float(self, value: float, verb: str) -> None:
        f = self.f
        if verb not in "vbgGxXfFeE":
            self.bad_verb(verb, value)
            return
        if math.isinf(value) or math.isnan(value):
            text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
            if text == "NaN" and (f.plus or f.space):
                text = ("+" if f.plus else " ") + text
            elif text == "+Inf" and not f.plus:
                text = " Inf" if f.space else "+Inf"
            zero, f.zero = f.zero, False
            self.pad(text)
            f.zero = zero
            return
        if verb in "vgG" and f.prec is None:
            text = _shortest_float(value, upper=verb == "G")
        elif verb in "gG":
            text = format(value, f".{f.prec}{verb}")
        elif verb in "fFeE":
            spec = "f" if verb == "F" else verb
            text = format(value, f".{6 if f.prec is None else f.prec}{spec}")
        else:
            text = value.hex() if verb == "x" else value.hex().upper()
        if not text.startswith("-"):
            text = ("+" if f.plus else " " if f.space else "") + text
        if f.zero and f.wid is not None and not f.minus and text[:1] in "+- " and len(text) < f.wid:
            self.buf.append(text[0] + "0" * (f.wid - len(text)) + text[1:])
            return
        self.pad(text)

    # values --------------------------------------------------------------------------------
    def bad_verb(self, verb: str, value: object) -> None:
        self.buf.append("%!" + verb + "(")
        t = type_of(value)
        if t is None:
            self.buf.append("<nil>")
        else:
            self.buf.append(t.name + "=")
            self.print_arg(value, "v", 0)
        self.buf.append(")")

    def print_arg(self, value: object, verb: str, depth: int = 0) -> None:
        if value is None:
            if depth > 0 or verb in "vT":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, None)
            return
        t = concrete_type(value)
        if verb == "T":
            self.pad(t.name)
            return
        stringer = getattr(value, "go_string", None)
        if stringer is not None and not self.f.sharp_v:
            if verb in "vsxXq":
                self.fmt_string(stringer(), verb)
            elif t.kind is Kind.STRUCT:  # Go would print the struct's private fields
                self.bad_verb(verb, value)
            else:
                self.fmt_integer(int(value), verb)  # type: ignore[call-overload]
            return
        if isinstance(value, bool):
            if verb in "tv":
                self.pad("true" if value else "false")
            else:
                self.bad_verb(verb, value)
        elif t.kind in (Kind.INT, Kind.UINT) and isinstance(value, int):
            self.fmt_integer(int(value), verb)
        elif isinstance(value, float):
            self.fmt_float(value, verb)
        elif isinstance(value, complex):
            if verb not in "vbgGxXfFeE":
                self.bad_verb(verb, value)
                return
            wid, plus = self.f.wid, self.f.plus
            self.buf.append("(")
            self.fmt_float(value.real, verb)
            self.f.plus = True
            self.fmt_float(value.imag, verb)
            self.buf.append("i)")
            self.f.wid, self.f.plus = wid, plus
        elif isinstance(value, str):
            self.fmt_string(value, verb)
        elif isinstance(value, Mapping):
            self.print_map(value, verb, depth, t.name)
        elif isinstance(value, Sequence):
            open_, close_ = ("{", "}") if self.f.sharp_v else ("[", "]")
            self.buf.append((t.name if self.f.sharp_v else "") + open_)
            for i, item in enumerate(value):
                if i:
                    self.buf.append(", " if self.f.sharp_v else " ")
                self.print_arg(item, verb, depth + 1)
            self.buf.append(close_)
        elif go_fields(value):
            if t.pointer and depth == 0:
                self.buf.append("&")
            self.buf.append((t.name.lstrip("*") if self.f.sharp_v else "") + "{")
            for i, name in enumerate(go_fields(value)):
                if i:
                    self.buf.append(", " if self.f.sharp_v else " ")
                if self.f.plus_v or self.f.sharp_v:
                    self.buf.append(name + ":")
                self.print_arg(getattr(value, name), verb, depth + 1)
            self.buf.append("}")
        else:
            self.pad(str(value))

    def print_map(self, value: Mapping[object, object], verb: str, depth: int, name: str) -> None:
        self.buf.append(name + "{" if self.f.sharp_v else "map[")
        for i, key in enumerate(sorted(value, key=_sort_key)):
            if i:
                self.buf.append(", " if self.f.sharp_v else " ")
            self.print_arg(key, verb, depth + 1)
            self.buf.append(":")
            self.print_arg(value[key], verb, depth + 1)
        self.buf.append("}" if self.f.sharp_v else "]")


def _sort_key(key: object) -> tuple[int, object]:
    # fmtsort: numbers by value, strings bytewise (code point order is the same for UTF-8).
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    return (2, str(key))


def format_value(value: object, *, deref: bool = False) -> str:
    """`fmt.Sprint(value)` of one value (`%v`); with `deref`, a pointer prints as the value it
    points to (as a template action prints it), not as `&{...}`."""
    if isinstance(value, str) and not hasattr(value, "go_string"):
        return value
    p = _Printer()
    p.print_arg(value, "v", 1 if deref else 0)
    return "".join(p.buf)


def _is_string(value: object) -> bool:
    t = type_of(value)
    return t is not None and t.kind is Kind.STRING


def sprint(args: Sequence[object]) -> str:
    """fmt.Sprint: operands as %v, a space between two operands when neither is a string."""
    p = _Printer()
    prev_string = False
    for i, arg in enumerate(args):
        is_string = _is_string(arg)
        if i > 0 and not is_string and not prev_string:
            p.buf.append(" ")
        p.print_arg(arg, "v")
        prev_string = is_string
    return "".join(p.buf)


def sprintln(args: Sequence[object]) -> str:
    """fmt.Sprintln: operands as %v separated by spaces, then a newline."""
    return " ".join(format_value(a) for a in args) + "\n"


def _number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and "0" <= fmt[i] <= "9":
        i += 1
        if i - start > 6:  # Go gives up on absurd widths as "not a number"
            return None, i
    return (int(fmt[start:i]) if i > start else None), i


def sprintf(fmt: str, args: Sequence[object]) -> str:
    """fmt.Sprintf with Go's verbs, flags, width, precision, `[n]` indexes and error forms."""
    p = _Printer()
    arg_num, i, end, reordered = 0, 0, len(fmt), False
    while i < end:
        j = fmt.find("%", i)
        if j < 0:
            p.buf.append(fmt[i:])
            break
        p.buf.append(fmt[i:j])
        i = j + 1
        p.f = f = _Flags()
        good_arg_num = True
        while i < end and fmt[i] in "#0+- ":
            ch = fmt[i]
            if ch == "#":
                f.sharp = True
            elif ch == "0":
                f.zero = not f.minus
            elif ch == "+":
                f.plus = True
            elif ch == "-":
                f.minus, f.zero = True, False
            else:
                f.space = True
            i += 1

        def arg_number(i: int) -> tuple[int, bool, bool]:
            nonlocal arg_num, reordered, good_arg_num
            if i >= end or fmt[i] != "[":
                return i, False, True
            reordered = True
            close = fmt.find("]", i + 1)
            if close < 0:
                good_arg_num = False
                return i + 1, False, False
            n, after = _number(fmt, i + 1)
            if n is None or after != close or not 0 < n <= len(args):
                good_arg_num = False
                return close + 1, n is not None and after == close, False
            arg_num = n - 1
            return close + 1, True, True

        i, after_index, _ = arg_number(i)
        if i < end and fmt[i] == "*":
            i += 1
            width = args[arg_num] if arg_num < len(args) else None
            arg_num += 1
            if isinstance(width, int) and not isinstance(width, bool):
                f.wid = abs(width)
                if width < 0:
                    f.minus, f.zero = True, False
            else:
                p.buf.append("%!(BADWIDTH)")
            after_index = False
        else:
            f.wid, i = _number(fmt, i)
            if after_index and f.wid is not None:
                good_arg_num = False
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:
                good_arg_num = False
            i, after_index, _ = arg_number(i)
            if i < end and fmt[i] == "*":
                i += 1
                prec = args[arg_num] if arg_num < len(args) else None
                arg_num += 1
                if isinstance(prec, int) and not isinstance(prec, bool) and prec >= 0:
                    f.prec = prec
                else:
                    f.prec = None
                    p.buf.append("%!(BADPREC)")
                after_index = False
            else:
                f.prec, i = _number(fmt, i)
                f.prec = f.prec or 0
        if not after_index:
            i, after_index, _ = arg_number(i)
        if i >= end:
            p.buf.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            p.buf.append("%")
        elif not good_arg_num:
            p.buf.append(f"%!{verb}(BADINDEX)")
        elif arg_num >= len(args):
            p.buf.append(f"%!{verb}(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False
                f.plus_v, f.plus = f.plus, False
            p.print_arg(args[arg_num], verb)
            arg_num += 1
    if not reordered and arg_num < len(args):
        p.f = _Flags()
        p.buf.append("%!(EXTRA ")
        for k, arg in enumerate(args[arg_num:]):
            if k:
                p.buf.append(", ")
            t = type_of(arg)
            if t is None:
                p.buf.append("<nil>")
            else:
                p.buf.append(t.name + "=")
                p.print_arg(arg, "v")
        p.buf.append(")")
    return "".join(p.buf)
