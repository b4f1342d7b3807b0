"""Execution of parsed templates: Go's text/template exec.go, with `missingkey=zero`.

The structure (walk, evalPipeline, evalCommand, evalField, evalCall, evalArg) and the points
where the current node is recorded follow Go, so error messages name the same node and position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from services.notifiers.template.builtins import BUILTINS, is_true, zero_value
from services.notifiers.template.errors import TemplateExecError
from services.notifiers.template.gofmt import format_value, go_quote
from services.notifiers.template.gotime import Duration
from services.notifiers.template.gotypes import (
    HTML,
    REFLECT_VALUE,
    CallError,
    Func,
    GoType,
    Kind,
    StringSlice,
    go_fields,
    go_methods,
    type_of,
)
from services.notifiers.template.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    Tree,
    VariableNode,
)

__all__ = ["MAX_DEPTH", "Sink", "TextSink", "execute"]

#: Nested {{template}} calls allowed (Go allows 100000; Python's stack does not).
MAX_DEPTH = 100


class Sink(Protocol):
    """Where execution writes: template text as is, and printed action values."""

    def text(self, text: str) -> None:
        """Write literal template text."""

    def value(self, value: object, escaper: str | None = None) -> None:
        """Write the value of an action (None is Go's invalid value); `escaper` names the
        predefined escaper (`html`, `urlquery`) that ends the action's pipeline, if any."""


class TextSink:
    """text/template output: values printed as fmt.Print prints them."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, text: str) -> None:
        self.parts.append(text)

    def value(self, value: object, escaper: str | None = None) -> None:
        self.parts.append("<no value>" if value is None else format_value(value, deref=True))


class _Missing:
    """Go's missingVal: no value is piped into the command."""


_MISSING = _Missing()
_Value = object  # a template value: any Python object; None is Go's invalid value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_EXPECTED = {
    Kind.BOOL: "bool",
    Kind.STRING: "string",
    Kind.INT: "integer",
    Kind.UINT: "unsigned integer",
    Kind.FLOAT: "float",
    Kind.COMPLEX: "complex",
}


def _nil(typ: GoType) -> object:
    """The nil of a type that has one; a nil []string behaves as an empty one."""
    return StringSlice() if typ.name == "[]string" else None


def _can_be_nil(typ: GoType) -> bool:
    return typ is REFLECT_VALUE or typ.kind in (Kind.INTERFACE, Kind.MAP, Kind.SLICE, Kind.FUNC)


class _State:
    def __init__(
        self, templates: Mapping[str, Tree], funcs: Mapping[str, Func], tree: Tree, sink: Sink
    ) -> None:
        self.templates = templates
        self.funcs = funcs
        self.tree = tree
        self.sink = sink
        self.node: Node | None = None
        self.vars: list[list[object]] = []
        self.depth = 0

    # errors and variables ------------------------------------------------------------------
    def at(self, node: Node) -> None:
        self.node = node

    def error(self, message: str) -> TemplateExecError:
        name = self.tree.name
        node = self.node
        if node is None:
            return TemplateExecError(
                f"template: {name}: {message}", source=name, line=0, column=0, template=name
            )
        tree = node.tree or self.tree
        line, column = tree.location(node.pos)
        where = f"{tree.parse_name}:{line}:{column}"
        text = f"template: {where}: executing {go_quote(name)} at <{node.text()}>: {message}"
        return TemplateExecError(
            text, source=tree.parse_name, line=line, column=column, template=name
        )

    def var_value(self, name: str) -> _Value:
        for var in reversed(self.vars):
            if var[0] == name:
                return var[1]
        raise self.error(f"undefined variable: {name}")

    def set_var(self, name: str, value: _Value) -> None:
        for var in reversed(self.vars):
            if var[0] == name:
                var[1] = value
                return
        raise self.error(f"undefined variable: {name}")

    # walking -------------------------------------------------------------------------------
    def walk(self, dot: _Value, node: Node) -> None:
        self.at(node)
        if isinstance(node, TextNode):
            self.sink.text(node.value)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.sink.value(value, _trailing_escaper(node.pipe))
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:
            raise self.error(f"unknown node: {node}")

    def walk_if_or_with(self, dot: _Value, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            truth, ok = is_true(value)
            if not ok:
                raise self.error(f"if/with can't use {format_value(value)}")
            if truth:
                self.walk(value if node.kind == "with" else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: _Value, node: BranchNode) -> None:
        self.at(node)
        outer = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = len(self.vars)
            items: list[tuple[_Value, _Value]]
            if value is None:
                items = []
            elif isinstance(value, Mapping):
                items = [(k, value[k]) for k in sorted(value)]
            elif isinstance(value, Sequence) and not isinstance(value, str):
                items = list(enumerate(value))
            else:
                raise self.error(f"range can't iterate over {format_value(value)}")
            decl = node.pipe.decl
            for index, elem in items:
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                        if len(decl) > 1:
                            self.set_var(decl[1].ident[0], elem)
                    else:
                        self.vars[-1][1] = elem
                        if len(decl) > 1:
                            self.vars[-2][1] = index
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    del self.vars[mark:]
            if not items and node.else_list is not None:
                self.walk(dot, node.else_list)
        except _Break:
            pass
        finally:
            del self.vars[outer:]

    def walk_template(self, dot: _Value, node: TemplateNode) -> None:
        self.at(node)
        tree = self.templates.get(node.name)
        if tree is None or tree.root is None:
            raise self.error(f"template {go_quote(node.name)} not defined")
        if self.depth >= MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        dot = self.eval_pipeline(dot, node.pipe)
        state = _State(self.templates, self.funcs, tree, self.sink)
        state.depth = self.depth + 1
        state.vars = [["$", dot]]
        state.walk(dot, tree.root)

    # evaluation ----------------------------------------------------------------------------
    def eval_pipeline(self, dot: _Value, pipe: PipeNode | None) -> _Value:
        if pipe is None:
            return None
        self.at(pipe)
        value: _Value = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.vars.append([var.ident[0], value])
        return value

    def not_a_function(self, args: Sequence[Node], final: _Value) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: _Value, cmd: CommandNode, final: _Value) -> _Value:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.value
        raise self.error(f"can't evaluate command {go_quote(first.text())}")

    def ideal_constant(self, constant: NumberNode) -> _Value:
        self.at(constant)
        text = constant.source
        if constant.is_complex:
            return constant.complex_value
        hex_int = text[:2] in ("0x", "0X") and not any(c in text for c in "pP")
        if (
            constant.is_float
            and not hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return constant.float_value
        if constant.is_int:
            if not -(2**63) <= constant.int_value < 2**63:
                raise self.error(f"{text} overflows int")
            return constant.int_value
        if constant.is_uint:
            raise self.error(f"{text} overflows int")
        return None

    def eval_field_node(
        self, dot: _Value, field: FieldNode, args: Sequence[Node] | None, final: _Value
    ) -> _Value:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.ident, args, final)

    def eval_chain_node(
        self, dot: _Value, chain: ChainNode, args: Sequence[Node] | None, final: _Value
    ) -> _Value:
        self.at(chain)
        if not chain.fields:
            raise self.error("internal error: no fields in evalChainNode")
        if isinstance(chain.node, NilNode):
            raise self.error(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(
        self, dot: _Value, variable: VariableNode, args: Sequence[Node] | None, final: _Value
    ) -> _Value:
        self.at(variable)
        value = self.var_value(variable.ident[0])
        if len(variable.ident) == 1:
            self.not_a_function(args or [variable], final)
            return value
        return self.eval_field_chain(dot, value, variable, variable.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: _Value,
        receiver: _Value,
        node: Node,
        ident: Sequence[str],
        args: Sequence[Node] | None,
        final: _Value,
    ) -> _Value:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, None, _MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_function(
        self,
        dot: _Value,
        node: IdentifierNode,
        cmd: Node,
        args: Sequence[Node] | None,
        final: _Value,
    ) -> _Value:
        self.at(node)
        fn = self.funcs.get(node.name)
        if fn is None:
            raise self.error(f"{go_quote(node.name)} is not a defined function")
        builtin = BUILTINS.get(node.name) is fn
        return self.eval_call(dot, fn, (), builtin, cmd, node.name, args, final)

    def eval_field(
        self,
        dot: _Value,
        name: str,
        node: Node,
        args: Sequence[Node] | None,
        final: _Value,
        receiver: _Value,
    ) -> _Value:
        if receiver is None:
            return None  # missingkey=zero: a missing value reads as a missing value
        typ = type_of(receiver)
        method = go_methods(receiver).get(name)
        if method is not None:
            return self.eval_call(dot, method, (receiver,), False, node, name, args, final)
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if name in go_fields(receiver):
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            return getattr(receiver, name)
        if isinstance(receiver, Mapping) and typ is not None and typ.kind is Kind.MAP:
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return zero_value(typ.elem)
        raise self.error(f"can't evaluate field {name} in type {typ}")

    def eval_call(
        self,
        dot: _Value,
        fn: Func,
        bound: tuple[_Value, ...],
        builtin: bool,
        node: Node,
        name: str,
        args: Sequence[Node] | None,
        final: _Value,
    ) -> _Value:
        args = list(args[1:]) if args is not None else []
        num_in = len(args) + (final is not _MISSING)
        params = fn.params
        num_fixed = len(args)
        if fn.variadic:
            num_fixed = len(params) - 1
            if num_in < num_fixed:
                raise self.error(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(args)}"
                )
        elif num_in != len(params):
            raise self.error(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if fn.results != 1:
            raise self.error(
                f"can't call method/function {go_quote(name)} with {fn.results} results"
            )
        if builtin and name in ("and", "or"):  # they short-circuit
            value: _Value = None
            for arg in args:
                value = self.eval_arg(dot, REFLECT_VALUE, arg)
                if is_true(value)[0] == (name == "or"):
                    return value
            if final is not _MISSING:
                value = self.validate_type(final, REFLECT_VALUE)
            return value
        argv: list[_Value] = []
        for i in range(min(num_fixed, len(args))):
            argv.append(self.eval_arg(dot, params[i], args[i]))
        if fn.variadic:
            argv.extend(self.eval_arg(dot, params[-1], arg) for arg in args[len(argv) :])
        if final is not _MISSING:
            t = params[-1]
            if fn.variadic and num_in - 1 < num_fixed:
                t = params[num_in - 1]
            argv.append(self.validate_type(final, t))
        try:
            return fn.impl(*bound, *argv)
        except CallError as exc:
            self.at(node)
            raise self.error(f"error calling {name}: {exc}") from None

    def validate_type(self, value: _Value, typ: GoType | None) -> _Value:
        if value is None:
            if typ is None or _can_be_nil(typ):
                return None if typ is None else _nil(typ)
            raise self.error(f"invalid value; expected {typ}")
        if typ is None or typ is REFLECT_VALUE or typ.kind is Kind.INTERFACE:
            return value
        vt = type_of(value)
        if vt is not None and not vt.assignable_to(typ):
            raise self.error(f"wrong type for value; expected {typ}; got {vt}")
        return value

    def eval_arg(self, dot: _Value, typ: GoType | None, n: Node) -> _Value:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ is not None and _can_be_nil(typ):
                return _nil(typ)
            raise self.error(f"cannot assign nil to {typ}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_node(dot, n, [n], _MISSING), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, None, _MISSING), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, _MISSING), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, None, _MISSING), typ)
        kind = None if typ is None else typ.kind
        if typ is REFLECT_VALUE or kind is Kind.INTERFACE:
            return self.eval_empty_interface(dot, n)
        if kind is Kind.BOOL and isinstance(n, BoolNode):
            return n.value
        if kind is Kind.STRING and isinstance(n, StringNode):
            return n.value if typ is None or typ.name == "string" else _typed(typ, n.value)
        if isinstance(n, NumberNode) and typ is not None:
            if kind is Kind.INT and n.is_int:
                return _typed(typ, n.int_value)
            if kind is Kind.UINT and n.is_uint:
                return _typed(typ, n.int_value)
            if kind is Kind.FLOAT and n.is_float:
                return n.float_value
            if kind is Kind.COMPLEX and n.is_complex:
                return n.complex_value
        expected = None if kind is None else _EXPECTED.get(kind)
        if expected is not None:
            raise self.error(f"expected {expected}; found {n}")
        raise self.error(f"can't handle {n} for arg of type {typ}")

    def eval_empty_interface(self, dot: _Value, n: Node) -> _Value:
        self.at(n)
        if isinstance(n, BoolNode):
            return n.value
        if isinstance(n, DotNode):
            return dot
        if isinstance(n, FieldNode):
            return self.eval_field_node(dot, n, None, _MISSING)
        if isinstance(n, IdentifierNode):
            return self.eval_function(dot, n, n, None, _MISSING)
        if isinstance(n, NumberNode):
            return self.ideal_constant(n)
        if isinstance(n, StringNode):
            return n.value
        if isinstance(n, VariableNode):
            return self.eval_variable_node(dot, n, None, _MISSING)
        if isinstance(n, PipeNode):
            return self.eval_pipeline(dot, n)
        raise self.error(f"can't handle assignment of {n} to empty interface argument")


def _trailing_escaper(pipe: PipeNode) -> str | None:
    first = pipe.cmds[-1].args[0]
    if isinstance(first, IdentifierNode) and first.name in ("html", "urlquery"):
        return first.name
    return None


def _typed(typ: GoType, value: object) -> object:
    """A constant converted to a parameter's named type (time.Duration, template.HTML)."""
    if typ == Duration.go_type:
        return Duration(value)  # type: ignore[call-overload]
    if typ == HTML.go_type:
        return HTML(value)
    return value


def execute(
    templates: Mapping[str, Tree], funcs: Mapping[str, Func], tree: Tree, data: object, sink: Sink
) -> None:
    """Run `tree` with `data` as dot and `$`, writing to `sink`; TemplateExecError on failure."""
    state = _State(templates, funcs, tree, sink)
    state.vars = [["$", data]]
    if tree.root is None:
        raise state.error(f"{go_quote(tree.name)} is an incomplete or empty template")
    try:
        state.walk(data, tree.root)
    except RecursionError:
        raise state.error(f"exceeded maximum template depth ({MAX_DEPTH})") from None
