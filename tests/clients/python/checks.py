"""Shared pieces of the Python client scenarios (v3 over GraphQL, v4 over gRPC): the fixture shape
names and the result bookkeeping, so that both scenarios report alike (`N passed, M failed`, which
scripts/test.sh counts). Standard library only: each scenario runs in its own client venv."""

from __future__ import annotations

import sys

SHAPES = [
    "blue-circle",
    "blue-square",
    "brown-hexagon",
    "green-triangle",
    "orange-diamond",
    "pink-heart",
    "purple-cross",
    "red-circle",
    "red-square",
    "yellow-star",
]


class Checks:
    """Counts checks and remembers failures of one scenario."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.checked = 0
        self.failures: list[str] = []

    def record(self, label: str, ok: bool, shown: object, failure: str) -> None:
        """Prints one result line and remembers failures."""
        self.checked += 1
        print(f"{'ok' if ok else 'FAIL':<5} {self.name}  {label}: {shown}")
        if not ok:
            self.failures.append(f"{label}: {failure}")

    def summary(self) -> int:
        """Prints `<name> scenario: N passed, M failed` (failures on stderr); the exit code."""
        failed = len(self.failures)
        print(f"{self.name} scenario: {self.checked - failed} passed, {failed} failed")
        for f in self.failures:
            print(f"  - {f}", file=sys.stderr)
        return 1 if self.failures else 0
