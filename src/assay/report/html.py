"""The self-contained HTML report of one model version, and writing it with its model card.

The page has no external resource: the style sheet is inline, plots are PNG data
URIs and there is no script, so it opens offline and can be mailed as one file.
Every string from the user's data or config goes through Jinja2 autoescaping.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from assay.errors import DataError
from assay.report.wording import (
    DASH,
    compact,
    failed_gates,
    interval,
    num,
    test_use_warning,
)
from assay.report.card import render_model_card
from assay.report.inputs import ReportInput
from assay.report.sections import build_sections

__all__ = ["Banner", "Header", "render_html", "write_report"]


@dataclass(frozen=True)
class Banner:
    """A highlighted line under the title; ``cls`` is fail, warn or pass."""

    text: str
    cls: str


@dataclass(frozen=True)
class Header:
    """Title, banners and the version's identity."""

    title: str
    subtitle: str
    banners: tuple[Banner, ...]
    facts: tuple[tuple[str, str], ...]
    footer: str


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("assay.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _project_name(report: ReportInput) -> str:
    data = report.spec_section("data")
    return str(report.spec.get("name") or data.get("target") or "model")


def _header(report: ReportInput) -> Header:
    v = report.version
    number = v.get("version", "?")
    banners: list[Banner] = []
    failed = failed_gates(report)
    if failed:
        banners.append(Banner(
            f"Gate failed: {', '.join(failed)}. This version must not be promoted until "
            "every gate passes.", "fail"))
    elif report.gates:
        banners.append(Banner(f"All {len(report.gates)} gates passed.", "pass"))
    warning = test_use_warning(report)
    if warning:
        banners.append(Banner(f"Warning: {warning}.", "warn"))
    blocking = [f for f in (report.audit or {}).get("findings") or []
                if isinstance(f, dict) and f.get("severity") == "block"]
    if blocking:
        banners.append(Banner(
            f"The data audit has {len(blocking)} blocking finding(s); see Audit findings.", "warn"))

    evaluation = report.evaluation or {}
    primary = report.primary
    facts: list[tuple[str, str]] = [
        ("Version", str(number)),
        ("Family", str(v.get("family") or DASH)),
        ("Task", str(report.task or DASH)),
        ("Status", str(v.get("status") or DASH)),
    ]
    if primary:
        value = (evaluation.get("metrics") or {}).get(primary)
        bounds = (evaluation.get("intervals") or {}).get(primary)
        text = num(value) + (f" (95% interval {interval(bounds)})" if bounds else "")
        facts.append((f"Test {primary}", text))
    created = " by ".join(str(x) for x in (v.get("created_at"), v.get("user")) if x) or DASH
    facts += [
        ("Data version", str(v.get("data_version") or DASH)),
        ("Code version", str(v.get("code_version") or DASH)),
        ("Created", created),
        ("Parameters", compact(v.get("params"), 400)),
    ]
    uses, limit = v.get("test_uses"), v.get("max_test_uses")
    if v.get("test_fingerprint") or uses is not None:
        scored = f"scored {uses} candidate(s)" if uses is not None else "uses not recorded"
        if limit is not None:
            scored += f" (limit {limit})"
        facts.append(("Sealed test set", f"{v.get('test_fingerprint') or DASH}, {scored}"))
    return Header(
        title=f"{_project_name(report)} \u2014 model version {number}",
        subtitle=f"{v.get('family') or 'model'} \u00b7 {report.task or 'task unknown'} \u00b7 "
                 f"status {v.get('status') or 'unknown'}",
        banners=tuple(banners),
        facts=tuple(facts),
        footer=f"assay report of model version {number}. This file is self-contained: it "
               "loads nothing from the network.",
    )


def render_html(report: ReportInput) -> str:
    """The report of one model version as a single self-contained HTML page."""
    template = _environment().get_template("report.html")
    return template.render(header=_header(report), sections=build_sections(report))


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        # mkstemp creates 0600 files; a report is meant to be shared
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: ReportInput, path: Path | str) -> Path:
    """Write the HTML report to ``path`` and the model card beside it (same stem, ``.md``).

    Both files are written atomically (a temporary file renamed into place), so a
    reader never sees half a report. Missing parent folders are created.

    Returns:
        The path of the HTML file.

    Raises:
        DataError: ``path`` is a folder, or a file cannot be written there.
    """
    target = Path(path)
    if target.is_dir():
        raise DataError(
            "the report path is a folder",
            path=str(target),
            expected="a file name such as report.html",
            received="an existing folder",
            fix=f"Pass a file inside it, e.g. {target / 'report.html'}.",
        )
    card = target.with_name(target.stem + ".md")
    if card == target:
        raise DataError(
            "the report and its model card would be the same file",
            path=str(target),
            expected="an HTML file name, e.g. report.html",
            received=target.name,
            fix="Give the report an .html extension.",
        )
    html, markdown = render_html(report), render_model_card(report)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, html)
        _atomic_write(card, markdown)
    except OSError as exc:
        raise DataError(
            f"the report could not be written: {exc.strerror or exc}",
            path=str(target),
            expected="a writable location",
            received=type(exc).__name__,
            fix="Choose another output path or fix the folder's permissions.",
        ) from exc
    return target

