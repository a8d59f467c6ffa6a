"""Reading YAML within bounds: size, nesting depth, no aliases, no duplicate keys.

PyYAML's safe loader still accepts documents that cost far more than their size (a
few aliases that expand exponentially, nesting deep enough to exhaust the stack) and
silently keeps the last of two equal keys. assay.yaml needs none of that, so the
reader here refuses it, and every refusal names the file, line and column. It also
keeps where each key path was written, so later validation errors can name the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from assay.errors import ConfigError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "SHOWN_CHARS",
    "YamlDocument",
    "clip",
    "dotted",
    "parse_yaml",
    "read_yaml",
]

#: assay.yaml files are a few kilobytes; a megabyte is generous and bounds parse time
MAX_BYTES = 1_000_000
#: the deepest key path of assay.yaml is three levels; fifty leaves room for any value
MAX_DEPTH = 50
#: the most characters of a user's value an error message shows
SHOWN_CHARS = 80

KeyPath = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"


def clip(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` as text (``repr`` unless a string), cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dotted(path: KeyPath) -> str:
    """A key path as written in messages: ``data.drop[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document and the line and column (1-based) of each key path in it."""

    data: Any
    origin: str
    marks: Mapping[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> tuple[int, int] | None:
        """Where ``path``, or the nearest enclosing key written in the file, is."""
        for end in range(len(path), 0, -1):
            mark = self.marks.get(tuple(path[:end]))
            if mark is not None:
                return mark
        return None

    def where(self, path: KeyPath) -> str:
        """``origin, line N`` for ``path`` (just ``origin`` when it is not in the file)."""
        mark = self.locate(path)
        return f"{self.origin}, line {mark[0]}" if mark else self.origin


class _Refused(Exception):
    """Input the bounded loader will not compose, with where it starts."""

    def __init__(self, mark: Any, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.mark = mark
        self.problem = problem
        self.fix = fix


_TOO_DEEP = f"values are nested more than {MAX_DEPTH} levels deep"
_TOO_DEEP_FIX = "assay.yaml sections are at most a few levels deep; check for unclosed brackets."


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting deeper than :data:`MAX_DEPTH`.

    The checks run while the text is scanned and composed into nodes, before any value
    is built, so a document that would expand or recurse without bound costs no more
    than reading its first few lines.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 - PyYAML's name
        # the scanner looks up to 1,024 characters ahead of every open bracket, at a cost
        # that grows with the number of open brackets: stop at the first one too many
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(self.get_mark(), _TOO_DEEP, _TOO_DEEP_FIX)
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Refused(
                event.start_mark,
                f"aliases are not supported (found '*{clip(event.anchor, 40)}')",
                "Write the value out in full where the alias is; assay.yaml takes no "
                "anchors (&name) or aliases (*name).",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, _TOO_DEEP, _TOO_DEEP_FIX)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml(path: str | Path) -> YamlDocument:
    """Read the YAML file ``path`` within the bounds of this module.

    Raises:
        ConfigError: the file is missing, too large, not UTF-8, not valid YAML, or uses
            aliases, excessive nesting or a duplicate key. The message names the file,
            the line and column, and the fix.
    """
    path = Path(path)
    origin = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            "file not found",
            where=origin,
            fix="Run 'assay init DATA --target COLUMN' to write one, or pass --config.",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            "is a folder, not a file", where=origin, fix="Pass the path of assay.yaml itself."
        ) from None
    except OSError as exc:
        raise ConfigError(
            "cannot be read", where=origin, received=exc.strerror or str(exc),
            fix="Check the file's permissions.",
        ) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"is larger than {MAX_BYTES:,} bytes; a framing document is a few kilobytes",
            where=origin,
            fix="Point --config at assay.yaml, or remove the bulk data pasted into it.",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        raise ConfigError(
            "is UTF-16 text, not UTF-8" if utf16 else
            f"is not UTF-8 text (byte {exc.start}, line {line})",
            where=origin,
            line=line,
            fix="Re-save it as UTF-8.",
        ) from None
    return parse_yaml(text, origin)


def parse_yaml(text: str, origin: str = "assay.yaml") -> YamlDocument:
    """Parse ``text`` (see :func:`read_yaml`; ``origin`` names it in messages)."""
    if len(text) > MAX_BYTES:
        raise ConfigError(
            f"is larger than {MAX_BYTES:,} characters; a framing document is a few kilobytes",
            where=origin,
            fix="Remove the bulk data pasted into it.",
        )
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None, origin)
        marks: dict[KeyPath, tuple[int, int]] = {}
        _walk(loader, node, (), marks, origin)
        return YamlDocument(loader.construct_document(node), origin, marks)
    except _Refused as exc:
        raise _located(origin, exc.mark, exc.problem, exc.fix) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(origin, exc) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"contains a character YAML does not allow ({_code_point(exc.character)})",
            where=f"{origin}, line {line}",
            line=line,
            fix="Delete it, or quote the value with double quotes and write it as an escape.",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"is not valid YAML: {clip(str(exc).splitlines()[0])}",
            where=origin,
            fix="Check indentation (spaces, not tabs) and quoting.",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _code_point(character: str | int) -> str:
    code = character if isinstance(character, int) else ord(character)
    return f"U+{code:04X}"


def _walk(
    loader: _BoundedLoader,
    node: Node,
    path: KeyPath,
    marks: dict[KeyPath, tuple[int, int]],
    origin: str,
) -> None:
    """Record where each key path is and refuse a key written twice in one mapping."""
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = loader.construct_object(key_node)
            try:
                hash(key)
            except TypeError:
                continue
            part = key if isinstance(key, int) and not isinstance(key, bool) else str(key)
            child = (*path, part)
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if child in marks:
                first = marks[child][0]
                raise _Refused(
                    key_node.start_mark,
                    f"key '{clip(dotted(child))}' appears twice (lines {first} and {at[0]})",
                    "YAML would silently keep only the last one: delete the line you do not "
                    "mean.",
                )
            marks[child] = at
            _walk(loader, value_node, child, marks, origin)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            marks[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(loader, item, child, marks, origin)


def _located(origin: str, mark: Any, problem: str, fix: str) -> ConfigError:
    line, column = mark.line + 1, mark.column + 1
    return ConfigError(
        problem,
        where=f"{origin}, line {line}, column {column}",
        line=line,
        column=column,
        fix=fix,
    )


_SYNTAX_FIXES = (
    ("'\\t'", "YAML indents with spaces only: replace the tab with spaces."),
    ("mapping values are not allowed", "Quote values that contain ': ', and indent nested "
     "keys under their section by the same number of spaces."),
    ("could not find expected ':'", "Write each entry as 'key: value'; check this line and the "
     "one above for a missing colon or an unclosed quote."),
    ("end of stream", "Close the quote or bracket opened where the message says."),
    ("expected <block end>", "Indent the keys of one section by the same number of spaces."),
)


def _syntax_error(origin: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = clip(exc.problem or exc.context or "cannot be parsed")
    text = f"is not valid YAML: {problem}"
    context_mark = exc.context_mark
    if exc.context and context_mark is not None and mark is not None and (
        context_mark.line != mark.line
    ):
        text += (
            f" ({clip(exc.context, 60)} that starts at line {context_mark.line + 1}, "
            f"column {context_mark.column + 1})"
        )
    fix = next(
        (advice for needle, advice in _SYNTAX_FIXES if needle in (exc.problem or "")),
        "Check indentation (spaces only, sibling keys aligned) and quoting there: values "
        "containing ': ', ' #' or starting with '*', '&', '>' or '%' need quotes.",
    )
    if mark is None:
        return ConfigError(text, where=origin, fix=fix)
    return _located(origin, mark, text, fix)
