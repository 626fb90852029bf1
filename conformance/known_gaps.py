"""Known gaps of Agora: cases that fail against Agora because Agora lacks something, with the reason and the issue
that will close the gap. They are reported separately ("known gap"), never skipped silently, and only when the
broker under test is Agora (auto-detected through /info/sourceIdentity, or `--known-gaps agora`).

When a listed case passes, the run reports it as "passed" and lists it under "known gaps that no longer reproduce",
and Agora's own CI fails until the row below is removed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownGap:
    reason: str
    issue: int | None  # the open issue that will close the gap; None: a deviation no issue covers yet

    @property
    def ref(self) -> str:
        return f"issue #{self.issue}" if self.issue is not None else "no issue yet"


AGORA: dict[str, KnownGap] = {
}

PRODUCTS: dict[str, dict[str, KnownGap]] = {"agora": AGORA, "none": {}}
