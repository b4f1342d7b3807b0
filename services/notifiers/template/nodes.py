"""Parse-tree nodes of Go's text/template, with Go's `String()` forms (used in error messages)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.notifiers.template.gofmt import go_quote

__all__ = [
    "ActionNode",
    "BoolNode",
    "BranchNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "DotNode",
    "ElseNode",
    "EndNode",
    "FieldNode",
    "IdentifierNode",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "StringNode",
    "TemplateNode",
    "TextNode",
    "Tree",
    "VariableNode",
]


@dataclass(eq=False)
class Node:
    """A node at a character offset of its tree's source text."""

    pos: int
    tree: Tree | None = field(default=None, repr=False, kw_only=True)

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """Go's `Node.String()`: the node written back as template source."""
        raise NotImplementedError


@dataclass(eq=False)
class TextNode(Node):
    value: str = ""

    def text(self) -> str:
        return self.value


@dataclass(eq=False)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def text(self) -> str:
        return "".join(n.text() for n in self.nodes)


@dataclass(eq=False)
class DotNode(Node):
    def text(self) -> str:
        return "."


@dataclass(eq=False)
class NilNode(Node):
    def text(self) -> str:
        return "nil"


@dataclass(eq=False)
class BoolNode(Node):
    value: bool = False

    def text(self) -> str:
        return "true" if self.value else "false"


@dataclass(eq=False)
class NumberNode(Node):
    """A numeric constant; like Go it may be usable as several kinds at once."""

    source: str = ""
    is_int: bool = False
    is_uint: bool = False
    is_float: bool = False
    is_complex: bool = False
    int_value: int = 0
    float_value: float = 0.0
    complex_value: complex = 0j

    def text(self) -> str:
        return self.source


@dataclass(eq=False)
class StringNode(Node):
    quoted: str = ""
    value: str = ""

    def text(self) -> str:
        return self.quoted


@dataclass(eq=False)
class IdentifierNode(Node):
    name: str = ""

    def text(self) -> str:
        return self.name


@dataclass(eq=False)
class VariableNode(Node):
    """`$x` or `$x.Field.Other`: `ident[0]` is the variable name."""

    ident: list[str] = field(default_factory=list)

    def text(self) -> str:
        return ".".join(self.ident)


@dataclass(eq=False)
class FieldNode(Node):
    ident: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass(eq=False)
class ChainNode(Node):
    """A term followed by fields: `(pipeline).Field`, `func.Field`."""

    node: Node
    fields: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = self.node.text()
        if isinstance(self.node, PipeNode):
            head = f"({head})"
        return head + "".join("." + f for f in self.fields)


@dataclass(eq=False)
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(f"({a.text()})" if isinstance(a, PipeNode) else a.text() for a in self.args)


@dataclass(eq=False)
class PipeNode(Node):
    line: int = 0
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def text(self) -> str:
        out = ""
        if self.decl:
            out = ", ".join(v.text() for v in self.decl) + " := "
        return out + " | ".join(c.text() for c in self.cmds)


@dataclass(eq=False)
class ActionNode(Node):
    pipe: PipeNode
    line: int = 0

    def text(self) -> str:
        return "{{" + self.pipe.text() + "}}"


@dataclass(eq=False)
class BranchNode(Node):
    """`if`, `range` and `with`: `kind` is the keyword."""

    kind: str
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None = None
    line: int = 0

    def text(self) -> str:
        out = "{{" + self.kind + " " + self.pipe.text() + "}}" + self.list.text()
        if self.else_list is not None:
            out += "{{else}}" + self.else_list.text()
        return out + "{{end}}"


@dataclass(eq=False)
class TemplateNode(Node):
    line: int = 0
    name: str = ""
    pipe: PipeNode | None = None

    def text(self) -> str:
        pipe = "" if self.pipe is None else " " + self.pipe.text()
        return "{{template " + go_quote(self.name) + pipe + "}}"


@dataclass(eq=False)
class BreakNode(Node):
    def text(self) -> str:
        return "{{break}}"


@dataclass(eq=False)
class ContinueNode(Node):
    def text(self) -> str:
        return "{{continue}}"


@dataclass(eq=False)
class EndNode(Node):
    def text(self) -> str:
        return "{{end}}"


@dataclass(eq=False)
class ElseNode(Node):
    line: int = 0

    def text(self) -> str:
        return "{{else}}"


@dataclass(eq=False)
class Tree:
    """One named template: its root list and the source it was parsed from."""

    name: str
    parse_name: str
    source: str
    root: ListNode | None = None

    def location(self, pos: int) -> tuple[int, int]:
        """Line (1-based) and byte column (0-based, as Go counts) of a character offset."""
        before = self.source[:pos]
        line_start = before.rfind("\n") + 1
        return before.count("\n") + 1, len(before[line_start:].encode("utf-8", "surrogatepass"))

    def is_empty(self) -> bool:
        """Go's `parse.IsEmptyTree`: nothing but whitespace text."""
        return self.root is None or all(_is_empty(n) for n in self.root.nodes)


def _is_empty(node: Node) -> bool:
    if isinstance(node, TextNode):
        return not node.value.strip()
    if isinstance(node, ListNode):
        return all(_is_empty(n) for n in node.nodes)
    return False
