"""The parser of Go's text/template (Go 1.19), ported to Python with Go's error messages."""

from __future__ import annotations

import math
import re
from collections.abc import Container

from services.notifiers.template.errors import TemplateSyntaxError
from services.notifiers.template.gofmt import go_quote
from services.notifiers.template.lexer import Item, T, lex
from services.notifiers.template.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    ElseNode,
    EndNode,
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

__all__ = ["parse", "unquote"]

_SIMPLE = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


class _Syntax(ValueError):
    """strconv's ErrSyntax."""


def _unquote_char(s: str, i: int, quote: str) -> tuple[int, bool, int]:
    """One (possibly escaped) character of a Go literal: its value, whether it is a raw byte
    (hex and octal escapes), and the index after it. _Syntax if malformed."""
    ch = s[i]
    if ch != "\\":
        if ch == quote and quote in "'\"":
            raise _Syntax
        return ord(ch), False, i + 1
    if i + 1 >= len(s):
        raise _Syntax
    c = s[i + 1]
    if c in _SIMPLE:
        return _SIMPLE[c], False, i + 2
    if c in "'\"":
        if c != quote:
            raise _Syntax
        return ord(c), False, i + 2
    size = {"x": 2, "u": 4, "U": 8}.get(c)
    if size is not None:
        digits = s[i + 2 : i + 2 + size]
        if len(digits) != size or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            raise _Syntax
        value = int(digits, 16)
        if c != "x" and (value > 0x10FFFF or 0xD800 <= value < 0xE000):
            raise _Syntax
        return value, c == "x", i + 2 + size
    if "0" <= c <= "7":
        digits = s[i + 1 : i + 4]
        if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
            raise _Syntax
        return int(digits, 8), True, i + 4
    raise _Syntax


def unquote(literal: str) -> str:
    """strconv.Unquote of a "double-quoted" or `raw` Go string literal; ValueError if invalid."""
    if len(literal) < 2 or literal[0] != literal[-1] or literal[0] not in '"`':
        raise _Syntax
    body = literal[1:-1]
    if literal[0] == "`":
        if "`" in body:
            raise _Syntax
        return body.replace("\r", "")
    out, i = bytearray(), 0
    while i < len(body):
        if body[i] == "\n":
            raise _Syntax
        value, is_byte, i = _unquote_char(body, i, '"')
        out += bytes([value]) if is_byte else chr(value).encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "surrogateescape")


def _parse_int(text: str) -> int | None:
    """strconv.ParseInt/ParseUint with base 0 (0x, 0o, 0b, a leading 0 for octal, `_`)."""
    body = text.lstrip("+-")
    if re.fullmatch(r"0[0-7_]+", body):
        body = "0o" + body[1:]
    try:
        value = int(body, 0)
    except ValueError:
        return None
    return -value if text.startswith("-") else value


def _number(node: NumberNode, typ: T) -> None:
    text = node.source
    if typ is T.CHAR_CONSTANT:
        try:
            code, _, end = _unquote_char(text, 1, "'")
        except _Syntax:
            raise ValueError("invalid syntax") from None
        if text[end:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        node.int_value, node.float_value = code, float(code)
        node.is_int = node.is_uint = node.is_float = True
        return
    if typ is T.COMPLEX or text.endswith("i"):
        try:
            number = complex(text.replace("i", "j").replace("_", ""))
        except ValueError:
            raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
        node.is_complex, node.complex_value = True, number
        if number.imag == 0:  # Go's simplifyComplex
            node.is_float, node.float_value = True, number.real
            if number.real.is_integer():
                node.is_int, node.int_value = True, int(number.real)
                node.is_uint = number.real >= 0
        return
    value_int = _parse_int(text)
    if value_int is not None and -(2**63) <= value_int < 2**64:
        node.is_uint = value_int >= 0
        node.is_int = value_int < 2**63
        node.int_value, node.is_float, node.float_value = value_int, True, float(value_int)
        return
    try:
        value = float.fromhex(text) if "x" in text.lower() else float(text)
    except ValueError:
        raise ValueError(f"illegal number syntax: {go_quote(text)}") from None
    if math.isinf(value):  # strconv.ParseFloat: value out of range
        raise ValueError(f"illegal number syntax: {go_quote(text)}")
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f"integer overflow: {go_quote(text)}")
    node.is_float, node.float_value = True, value
    if value.is_integer() and abs(value) < 2**63:
        node.is_int, node.int_value = True, int(value)
        node.is_uint = value >= 0


class _Parser:
    """Go's parse.Tree parsing state; `define` and `block` bodies reuse the token stream."""

    def __init__(self, text: str, parse_name: str, funcs: Container[str]) -> None:
        self.text = text
        self.parse_name = parse_name
        self.funcs = funcs
        self.items = lex(text)
        self.index = 0
        self.token: list[Item] = [self.items[0]] * 3
        self.peek_count = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.tree = Tree(parse_name, parse_name, text)
        self.tree_set: dict[str, Tree] = {}

    # tokens --------------------------------------------------------------------------------
    def next(self) -> Item:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = self.items[min(self.index, len(self.items) - 1)]
            self.index += 1
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: Item) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: Item, t1: Item) -> None:
        self.token[1], self.token[2] = t1, t2
        self.peek_count = 3

    def peek(self) -> Item:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = self.items[min(self.index, len(self.items) - 1)]
        self.index += 1
        return self.token[0]

    def next_non_space(self) -> Item:
        while (token := self.next()).typ is T.SPACE:
            pass
        return token

    def peek_non_space(self) -> Item:
        token = self.next_non_space()
        self.backup()
        return token

    # errors --------------------------------------------------------------------------------
    def errorf(self, message: str) -> TemplateSyntaxError:
        token = self.token[0]
        line, column = self.tree.location(token.pos)
        text = f"template: {self.parse_name}:{token.line}: {message}"
        return TemplateSyntaxError(text, source=self.parse_name, line=line, column=column)

    def expect(self, expected: T, context: str) -> Item:
        token = self.next_non_space()
        if token.typ is not expected:
            raise self.unexpected(token, context)
        return token

    def unexpected(self, token: Item, context: str) -> TemplateSyntaxError:
        if token.typ is T.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.parse_name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{token}{extra}")
        return self.errorf(f"unexpected {token} in {context}")

    # trees ---------------------------------------------------------------------------------
    def add(self, tree: Tree) -> None:
        old = self.tree_set.get(tree.name)
        if old is None or old.is_empty():
            self.tree_set[tree.name] = tree
        elif not tree.is_empty():
            raise self.errorf(f"template: multiple definition of template {go_quote(tree.name)}")

    def parse(self, name: str) -> dict[str, Tree]:
        top = Tree(name, self.parse_name, self.text)
        self.tree = top
        top.root = ListNode(self.peek().pos, tree=top)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ is T.DEFINE:
                    self.parse_definition()
                    self.tree = top
                    continue
                self.backup2(delim)
            node = self.text_or_action()
            if isinstance(node, EndNode | ElseNode):
                raise self.errorf(f"unexpected {node}")
            top.root.nodes.append(node)
        self.add(top)
        return self.tree_set

    def sub_tree(self, name: str) -> tuple[list[str], int]:
        self.tree = Tree(name, self.parse_name, self.text)
        saved = self.vars, self.range_depth
        self.vars, self.range_depth = ["$"], 0
        return saved

    def parse_definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        try:
            name = unquote(token.val)
        except ValueError:
            raise self.errorf("invalid syntax") from None
        saved = self.sub_tree(name)
        self.expect(T.RIGHT_DELIM, context)
        tree = self.tree
        tree.root, end = self.item_list()
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(tree)
        self.vars, self.range_depth = saved

    def item_list(self) -> tuple[ListNode, Node]:
        items = ListNode(self.peek_non_space().pos, tree=self.tree)
        while self.peek_non_space().typ is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, EndNode | ElseNode):
                return items, node
            items.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.TEXT:
            return TextNode(token.pos, value=token.val, tree=self.tree)
        if token.typ is T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.typ is T.BLOCK:
            return self.block_control()
        if token.typ in (T.BREAK, T.CONTINUE):
            word = token.val
            if (after := self.next_non_space()).typ is not T.RIGHT_DELIM:
                raise self.unexpected(after, "{{" + word + "}}")
            if self.range_depth == 0:
                raise self.errorf("{{" + word + "}} outside {{range}}")
            cls = BreakNode if token.typ is T.BREAK else ContinueNode
            return cls(token.pos, tree=self.tree)
        if token.typ is T.ELSE:
            peek = self.peek_non_space()
            if peek.typ is T.IF:  # "{{else if ...": the if is left pending
                return ElseNode(peek.pos, line=peek.line, tree=self.tree)
            token = self.expect(T.RIGHT_DELIM, "else")
            return ElseNode(token.pos, line=token.line, tree=self.tree)
        if token.typ is T.END:
            return EndNode(self.expect(T.RIGHT_DELIM, "end").pos, tree=self.tree)
        if token.typ in (T.IF, T.RANGE, T.WITH):
            return self.branch(token.val)
        if token.typ is T.TEMPLATE:
            return self.template_control()
        self.backup()
        token = self.peek()
        pipe = self.pipeline("command", T.RIGHT_DELIM)
        return ActionNode(token.pos, line=token.line, pipe=pipe, tree=self.tree)

    def pipeline(self, context: str, end: T) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, line=token.line, tree=self.tree)
        while (v := self.peek_non_space()).typ is T.VARIABLE:
            self.next()
            after_variable = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ is T.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, ident=[v.val], tree=self.tree))
                self.vars.append(v.val)
            elif nxt.typ is T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, ident=[v.val], tree=self.tree))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # the second variable of a range
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            elif after_variable.typ is T.SPACE:
                self.backup3(v, after_variable)
            else:
                self.backup2(v)
            break
        while True:
            token = self.next_non_space()
            if token.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in (
                T.BOOL, T.CHAR_CONSTANT, T.COMPLEX, T.DOT, T.FIELD, T.IDENTIFIER, T.NUMBER,
                T.NIL, T.RAW_STRING, T.STRING, T.VARIABLE, T.LEFT_PAREN,
            ):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def branch(self, kind: str) -> BranchNode:
        mark = len(self.vars)
        pipe = self.pipeline(kind, T.RIGHT_DELIM)
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_list = None
        if isinstance(nxt, ElseNode):
            if kind == "if" and self.peek().typ is T.IF:
                self.next()  # "{{else if": the nested if consumes the single {{end}}
                else_list = ListNode(nxt.pos, nodes=[self.branch("if")], tree=self.tree)
            else:
                else_list, nxt = self.item_list()
                if not isinstance(nxt, EndNode):
                    raise self.errorf(f"expected end; found {nxt}")
        del self.vars[mark:]
        return BranchNode(
            pipe.pos, kind=kind, line=pipe.line, pipe=pipe, list=body, else_list=else_list,
            tree=self.tree,
        )  # fmt: skip

    def template_name(self, token: Item, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        try:
            return unquote(token.val)
        except ValueError:
            raise self.errorf("invalid syntax") from None

    def block_control(self) -> TemplateNode:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        outer = self.tree
        saved = self.sub_tree(name)
        block = self.tree
        block.root, end = self.item_list()
        if not isinstance(end, EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(block)
        self.tree = outer
        self.vars, self.range_depth = saved
        return TemplateNode(token.pos, line=token.line, name=name, pipe=pipe, tree=outer)

    def template_control(self) -> TemplateNode:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return TemplateNode(token.pos, line=token.line, name=name, pipe=pipe, tree=self.tree)

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos, tree=self.tree)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ is T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ is not T.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().typ is not T.FIELD:
            return node
        chain = ChainNode(self.peek().pos, node=node, tree=self.tree)
        while self.peek().typ is T.FIELD:
            chain.fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(chain.pos, ident=node.ident + chain.fields, tree=self.tree)
        if isinstance(node, VariableNode):
            return VariableNode(chain.pos, ident=node.ident + chain.fields, tree=self.tree)
        if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
            raise self.errorf(f"unexpected . after term {go_quote(node.text())}")
        return chain

    def term(self) -> Node | None:
        token = self.next_non_space()
        tree = self.tree
        if token.typ is T.IDENTIFIER:
            if token.val not in self.funcs:
                raise self.errorf(f"function {go_quote(token.val)} not defined")
            return IdentifierNode(token.pos, name=token.val, tree=tree)
        if token.typ is T.DOT:
            return DotNode(token.pos, tree=tree)
        if token.typ is T.NIL:
            return NilNode(token.pos, tree=tree)
        if token.typ is T.VARIABLE:
            if token.val not in self.vars:
                raise self.errorf(f"undefined variable {go_quote(token.val)}")
            return VariableNode(token.pos, ident=[token.val], tree=tree)
        if token.typ is T.FIELD:
            return FieldNode(token.pos, ident=[token.val[1:]], tree=tree)
        if token.typ is T.BOOL:
            return BoolNode(token.pos, value=token.val == "true", tree=tree)
        if token.typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            node = NumberNode(token.pos, source=token.val, tree=tree)
            try:
                _number(node, token.typ)
            except ValueError as exc:
                raise self.errorf(str(exc)) from None
            return node
        if token.typ is T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if token.typ in (T.STRING, T.RAW_STRING):
            try:
                value = unquote(token.val)
            except ValueError:
                raise self.errorf("invalid syntax") from None
            return StringNode(token.pos, quoted=token.val, value=value, tree=tree)
        self.backup()
        return None


def parse(
    text: str, name: str, funcs: Container[str], parse_name: str | None = None
) -> dict[str, Tree]:
    """Parse `text` as the template `name`; returns it and every template it `define`s.

    `parse_name` (default `name`) is the name errors cite, as Go's ParseName: the file's base
    name for a file, "" for a receiver field. Raises TemplateSyntaxError.
    """
    parser = _Parser(text, name if parse_name is None else parse_name, funcs)
    return parser.parse(name)
