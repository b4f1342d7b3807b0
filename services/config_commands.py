"""`tocsin config ...`: amtool's config commands (check, routes show, routes test).

Output and exit status follow amtool 0.25 so scripts written for amtool keep working; Tocsin adds
every problem with file, line and YAML path, lint warnings, and `routes test --input` for many
label sets at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from schemas.config import Config, ConfigError, MatcherError, MatchType, Route, lint, load
from schemas.config.matchers import format_matchers, matches_all, parse_matcher

__all__ = [
    "add_parser",
    "check",
    "parse_label_args",
    "routes_show",
    "routes_test",
    "routes_test_input",
    "run_command",
]


def check(files: Sequence[Path], out: TextIO, err: TextIO) -> int:
    """Validate each file as `amtool check-config` does, plus Tocsin's lint warnings."""
    failed = 0
    for path in files:
        if not path.exists():
            print(f"tocsin: error: path '{path}' does not exist", file=err)
            return 1
        try:
            config = load(path)
        except ConfigError as exc:
            failed += 1
            print(f"Checking '{path}'  FAILED: {len(exc.problems)} problem(s)", file=out)
            for problem in exc.problems:
                print(f"  {problem}", file=out)
            print(file=out)
            continue
        print(f"Checking '{path}'  SUCCESS", file=out)
        print("Found:", file=out)
        print(" - global config", file=out)
        print(" - route", file=out)
        print(f" - {len(config.inhibit_rules)} inhibit rules", file=out)
        print(f" - {len(config.receivers)} receivers", file=out)
        print(f" - {len(config.templates)} templates", file=out)
        warnings = lint(config)
        if warnings:
            print(f"Warnings ({len(warnings)}):", file=out)
            for warning in warnings:
                print(f" - {warning}", file=out)
        print(file=out)
    if failed:
        print(f"tocsin: error: failed to validate {failed} file(s)", file=err)
        return 1
    return 0


def _slug(route: Route, *, show_continue: bool, show_receiver: bool) -> str:
    text = format_matchers(route.matchers) if route.matchers else "default-route"
    if show_continue and route.continue_:
        text += "  continue: true"
    if show_receiver:
        text += f"  receiver: {route.receiver}"
    return text


def _tree(lines: list[tuple[int, list[bool], str]]) -> Iterator[str]:
    """Render (depth, last-flags of ancestors, text) rows as treeprint draws them."""
    yield "."
    for _, lasts, text in lines:
        # treeprint (amtool's) continues a branch with "│", two no-break spaces and a space.
        prefix = "".join("    " if last else "│\u00a0\u00a0 " for last in lasts[:-1])
        yield prefix + ("└── " if lasts[-1] else "├── ") + text


def _show_rows(route: Route, lasts: list[bool], rows: list[tuple[int, list[bool], str]]) -> None:
    rows.append((len(lasts), lasts, _slug(route, show_continue=True, show_receiver=True)))
    for i, child in enumerate(route.routes):
        _show_rows(child, [*lasts, i == len(route.routes) - 1], rows)


def routes_show(config: Config, out: TextIO) -> int:
    """The routing tree, as `amtool config routes show` prints it."""
    rows: list[tuple[int, list[bool], str]] = []
    _show_rows(config.route, [True], rows)
    print("Routing tree:", file=out)
    print("\n".join(_tree(rows)), file=out)
    print(file=out)
    return 0


def _matching_rows(
    route: Route,
    labels: Mapping[str, str],
    lasts: list[bool],
    rows: list[tuple[int, list[bool], str]],
) -> None:
    chosen: list[Route] = []
    for child in route.routes:
        if matches_all(child.matchers, labels):
            chosen.append(child)
            if not child.continue_:
                break
    rows.append((len(lasts), lasts, _slug(route, show_continue=False, show_receiver=not chosen)))
    for i, child in enumerate(chosen):
        _matching_rows(child, labels, [*lasts, i == len(chosen) - 1], rows)


def parse_label_args(args: Sequence[str]) -> dict[str, str]:
    """`name=value` arguments (amtool's matcher syntax, `=` only) as a label set."""
    labels: dict[str, str] = {}
    for arg in args:
        try:
            matcher = parse_matcher(arg)
        except MatcherError as exc:
            raise ValueError(f"Failed to parse labels: {exc}") from None
        if matcher.type is not MatchType.EQUAL:
            raise ValueError("Failed to parse labels: labels must be specified as key=value pairs")
        labels[matcher.name] = matcher.value
    return labels


def _receivers(config: Config, labels: Mapping[str, str]) -> str:
    return ",".join(route.receiver for route in config.route.match(labels))


def routes_test(
    config: Config,
    labels: Mapping[str, str],
    out: TextIO,
    *,
    verify: str | None = None,
    tree: bool = False,
) -> int:
    """The receivers `labels` route to, comma-separated in match order (duplicates kept)."""
    if tree:
        rows: list[tuple[int, list[bool], str]] = []
        _matching_rows(config.route, labels, [True], rows)
        print("Matching routes:", file=out)
        print("\n".join(_tree(rows)), file=out)
        print("\n", file=out)
    receivers = _receivers(config, labels)
    print(receivers, file=out)
    if verify and verify != receivers:
        print("WARNING: Expected receivers did not match resolved receivers.", file=out)
        return 1
    return 0


def routes_test_input(config: Config, lines: TextIO, out: TextIO, err: TextIO) -> int:
    """One output line per JSON-object-of-labels input line; bad lines are reported on `err`."""
    status = 0
    for number, line in enumerate(lines, start=1):
        try:
            labels = json.loads(line)
            if not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
            ):
                raise ValueError("expected a JSON object of string label values")
        except ValueError as exc:
            print(f"tocsin: error: input line {number}: {exc}", file=err)
            print(file=out)  # keep output lines aligned with input lines
            status = 1
            continue
        print(_receivers(config, labels), file=out)
    return status


def add_parser(commands: Any) -> None:
    """The `config` command and its subcommands, on the CLI's subparsers."""
    config = commands.add_parser(
        "config",
        help="check and explore an alertmanager.yml (as amtool's config commands)",
        description="Check and explore an alertmanager.yml-compatible routing config. Output and "
        "exit status follow amtool 0.25. $VAR and ${VAR} are taken from the environment.",
    )
    sub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="validate config files (amtool check-config), with lint warnings",
        description="Validate each file: every problem with file, line and YAML path, then "
        "warnings for Alertmanager pitfalls. Exit status 1 if any file is invalid.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    routes = sub.add_parser(
        "routes",
        help="print the routing tree, or test where labels route (amtool config routes)",
        description="Without a subcommand: the routing tree (same as `routes show`).",
    )
    routes.set_defaults(routes_command="show")
    config_file = {
        "dest": "config_file",
        "type": Path,
        "default": None,
        "help": "the config file [env: TOCSIN_CONFIG__FILE]",
    }
    routes.add_argument("--config.file", **config_file)
    # On the subcommands the flag must not reset a value given before the subcommand's name.
    config_file = {**config_file, "default": argparse.SUPPRESS}
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="COMMAND")
    show = routes_sub.add_parser("show", help="print the routing tree")
    show.add_argument("--config.file", **config_file)
    test = routes_sub.add_parser(
        "test",
        help="print the receivers a label set routes to",
        description="Print the receivers the labels route to, comma-separated in match order "
        "(one entry per matched route, duplicates kept), as amtool config routes test. With "
        "--input, read one JSON object of labels per line and print one line per input line.",
    )
    test.add_argument("--config.file", **config_file)
    test.add_argument(
        "--verify.receivers",
        dest="verify_receivers",
        default=None,
        metavar="A,B",
        help="exit 1 with a warning unless the labels route to exactly these receivers",
    )
    test.add_argument("--tree", action="store_true", help="print the tree of matching routes")
    test.add_argument(
        "--input",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="label sets to test, one JSON object per line ('-' for standard input)",
    )
    test.add_argument("labels", nargs="*", metavar="name=value")


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed `tocsin config ...` command; its exit status."""
    if args.config_command == "check":
        return check(args.files, sys.stdout, sys.stderr)
    path = args.config_file or os.environ.get("TOCSIN_CONFIG__FILE")
    if not path:
        print("tocsin: error: --config.file (or TOCSIN_CONFIG__FILE) is required", file=sys.stderr)
        return 2
    try:
        config = load(path)
    except ConfigError as exc:
        print(f"tocsin: error: {exc}", file=sys.stderr)
        return 1
    if (args.routes_command or "show") == "show":
        return routes_show(config, sys.stdout)
    if args.input is not None:
        if str(args.input) == "-":
            return routes_test_input(config, sys.stdin, sys.stdout, sys.stderr)
        with args.input.open(encoding="utf-8") as lines:
            return routes_test_input(config, lines, sys.stdout, sys.stderr)
    try:
        labels = parse_label_args(args.labels)
    except ValueError as exc:
        print(f"tocsin: error: {exc}", file=sys.stderr)
        return 1
    return routes_test(config, labels, sys.stdout, verify=args.verify_receivers, tree=args.tree)
