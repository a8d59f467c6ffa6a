"""What ``assay demo`` reports: each step it ran and whether the story held."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoResult", "DemoStep"]


@dataclass(frozen=True)
class DemoStep:
    """One stage the demo ran: what it did, whether it passed, where its output is."""

    name: str
    ok: bool
    summary: str
    seconds: float
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoResult:
    """Every step of the demo and the project folder it left behind."""

    directory: str
    steps: tuple[DemoStep, ...]

    @property
    def passed(self) -> bool:
        """Every step did what the story needs, through to the last one (the rollback)."""
        return bool(self.steps) and all(s.ok for s in self.steps) and self.steps[-1].name == "rollback"

    @property
    def failed_steps(self) -> list[str]:
        """The names of the steps that did not pass."""
        return [s.name for s in self.steps if not s.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "passed": self.passed,
            "steps": [
                {"name": s.name, "ok": s.ok, "summary": s.summary, "seconds": round(s.seconds, 2),
                 "outputs": s.outputs}
                for s in self.steps
            ],
        }
