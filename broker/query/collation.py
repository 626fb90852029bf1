"""String collation of Entity ordering (clause 4.23): the `collation` parameter, an ICU collation named by a BCP 47
language tag with its Unicode extension (IETF RFC 6067), and the default, ICU's root collation ("und-x-icu").

Root collation is the Unicode Collation Algorithm with the default table (DUCET), computed by pyuca. Decision
record 0016: a tag is accepted when its collation is root's (`und`, `root`, and the languages whose CLDR standard
collation has no tailoring), optionally with a strength (`-u-ks-level1|level2|level3|identic`); a well-formed tag
that asks for a tailoring (sv, de-u-co-phonebk, ...) is refused with OperationNotSupported, a malformed one with
BadRequestData.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from broker.core.errors import BadRequestData, OperationNotSupported

#: Languages whose CLDR standard collation is the root collation (their tailorings are only optional types such
#: as German phonebook, reached through -u-co-, which is refused).
ROOT_LANGUAGES: Final = frozenset({"und", "root", "en", "de", "fr", "it", "nl", "pt"})

# RFC 5646 langtag (the grandfathered tags aside): language, script, region, variants, extensions, private use.
_TAG: Final = re.compile(
    r"^(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)"
    r"(?P<extensions>(?:-[a-wyz0-9](?:-[a-z0-9]{2,8})+)*)"
    r"(?:-x(?:-[a-z0-9]{1,8})+)?$"
)
#: -u-ks- strengths and the number of collation levels they compare (4: all of them, then code points).
_STRENGTHS: Final = {"level1": 1, "level2": 2, "level3": 3, "identic": 4}

SortKey = tuple[int, ...]


@dataclass(frozen=True)
class Collation:
    """A string collation: `key(text)` orders strings as the collation does."""

    tag: str
    levels: int = 3

    def key(self, text: str) -> SortKey:
        full: SortKey = _collator()(text)
        if self.levels == 4:
            return (*full, 0, *(ord(c) for c in text))
        if self.levels == 3:
            return full
        cut, seen = len(full), 0
        for n, weight in enumerate(full):  # levels are separated by a 0 weight in pyuca's keys
            if weight == 0:
                seen += 1
                if seen == self.levels:
                    cut = n
                    break
        return full[:cut]


ROOT: Final = Collation("und-x-icu")


@functools.cache
def _collator() -> Callable[[str], SortKey]:
    """pyuca's collator, made once (it reads the DUCET table, about half a second) and only when a query sorts."""
    from pyuca import Collator

    collator = Collator()
    return collator.sort_key  # type: ignore[no-any-return]


def parse_collation(text: str) -> Collation:
    """The collation that `collation=text` names (clause 4.23.3)."""
    match = _TAG.match(text.lower()) if len(text) <= 100 else None
    if match is None:
        raise BadRequestData(f"collation={text!r} is not a BCP 47 language tag such as und-x-icu or en")
    if match["language"] not in ROOT_LANGUAGES or match["variants"]:
        raise OperationNotSupported(
            f"collation={text!r}: this broker sorts with the root collation only (und, en, de, fr, ...)"
        )
    return Collation(text, _strength(text, match["extensions"] or ""))


def _strength(text: str, extensions: str) -> int:
    """The number of levels that -u-ks- asks for (3 by default); other -u- keywords would need a tailoring."""
    levels = 3
    for singleton, body in re.findall(r"-([a-wyz0-9])((?:-[a-z0-9]{2,8})+)", extensions):
        if singleton != "u":
            raise OperationNotSupported(f"collation={text!r}: only the -u- extension is understood")
        subtags = body.split("-")[1:]
        key = None
        for subtag in subtags:
            if len(subtag) == 2:
                key = subtag
            elif key == "ks" and subtag in _STRENGTHS:
                levels = _STRENGTHS[subtag]
            elif not (key == "co" and subtag == "standard"):
                raise OperationNotSupported(f"collation={text!r}: -u-{key}-{subtag} needs a tailored collation")
    return levels
