"""Pseudonymisation of identifiers for analytics tenants (GDPR art. 4(5), 25, 89(1); record 0323).

A pseudonym is the identifier encrypted with AES-SIV (RFC 5297, deterministic authenticated encryption) under the
controller's 512-bit key, with the purpose as associated data, written ``urn:ngsi-ld:Pseudonym:<base32>``:

- the same identifier always gets the same pseudonym (for one key and purpose), so analytics can still count,
  join and follow one meter's series;
- without the key nothing leads back: no table to steal, and AES-SIV hides everything but the length;
- the controller, holding the key, reverses a pseudonym (`reidentify`), for instance to answer a subject's request.

`pseudonymise_entity` makes the analytics copy of one entity: the values of attributes marked ``identifier`` and
the ids of entities of personal types become pseudonyms (and every Relationship to such an id with them), the
attributes of the directly identifying categories (identity, contact, health, location) are left out; what is
left (a consumption series, a trace's shape) is what the analysis is for.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from broker.core.errors import BadRequestData
from broker.core.model import Entity
from broker.store.base import EntityFilter, InstanceQuery, Store, TemporalInstance, WritePlan
from ontologies.personal_data import personal_entity_type, personal_in

PREFIX: Final = "urn:ngsi-ld:Pseudonym:"
KEY_BYTES: Final = 64  # AES-SIV with AES-256: two 256-bit keys
#: Categories whose attributes an analytics copy leaves out: they name or reach the person directly.
DROPPED: Final = frozenset({"identity", "contact", "health", "location"})
DEFAULT_PURPOSE: Final = "analytics"


class Pseudonymiser:
    def __init__(self, key: bytes, purpose: str = DEFAULT_PURPOSE) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a pseudonym key has {KEY_BYTES} bytes ({KEY_BYTES * 2} hex digits), not {len(key)}")
        self._siv = AESSIV(key)
        self._ad = [purpose.encode()]

    @classmethod
    def from_file(cls, path: str | Path, purpose: str = DEFAULT_PURPOSE) -> Pseudonymiser:
        text = Path(path).read_text(encoding="ascii").strip()
        try:
            return cls(bytes.fromhex(text), purpose)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def pseudonym(self, identifier: str) -> str:
        sealed = self._siv.encrypt(identifier.encode(), self._ad)
        return PREFIX + base64.b32encode(sealed).decode().rstrip("=").lower()

    def reidentify(self, pseudonym: str) -> str:
        """The identifier behind a pseudonym of this key and purpose; BadRequestData for anything else."""
        if not pseudonym.startswith(PREFIX):
            raise BadRequestData(f"{pseudonym!r} is not a pseudonym ({PREFIX}...)")
        text = pseudonym[len(PREFIX) :].upper()
        try:
            sealed = base64.b32decode(text + "=" * (-len(text) % 8))
            return self._siv.decrypt(sealed, self._ad).decode()
        except (ValueError, InvalidTag) as exc:
            raise BadRequestData("not a pseudonym made with this key and purpose") from exc

    def pseudonymise_entity(self, entity: Entity, personal_ids: Iterable[str] = ()) -> Entity:
        """The analytics copy of `entity` (see the module docstring); `personal_ids` are the ids of entities of
        personal types elsewhere in the data, whose Relationships get the same pseudonyms."""
        hidden = set(personal_ids)
        if personal_entity_type(entity["type"]) is not None:
            hidden.add(entity["id"])
        out = copy.deepcopy(entity)
        out["id"] = self.pseudonym(entity["id"]) if entity["id"] in hidden else entity["id"]
        attrs: dict[str, Any] = {}
        for attr, instances in entity["attrs"].items():
            mark = personal_in(entity["type"], attr)
            if mark is not None and mark.category in DROPPED:
                continue
            identifier = mark is not None and mark.category == "identifier"
            attrs[attr] = [self._instance(inst, identifier, hidden) for inst in instances]
        out["attrs"] = attrs
        return out

    def _instance(self, inst: dict[str, Any], identifier: bool, hidden: set[str]) -> dict[str, Any]:
        shown = copy.deepcopy(inst)
        for member in ("value", "object", "objectList"):
            if member in shown:
                shown[member] = self._content(shown[member], identifier, hidden)
        return shown

    def _content(self, content: Any, identifier: bool, hidden: set[str]) -> Any:
        if isinstance(content, list):
            return [self._content(c, identifier, hidden) for c in content]
        if isinstance(content, str) and (identifier or content in hidden):
            return self.pseudonym(content)
        if identifier and isinstance(content, int | float):
            return self.pseudonym(str(content))
        return content


def new_key() -> str:
    """A fresh key, hex (keep it where only the controller reads it)."""
    return secrets.token_hex(KEY_BYTES)


async def copy_to_analytics(store: Store, source: str, target: str, pseudonymiser: Pseudonymiser) -> tuple[int, int]:
    """Copy the entities of tenant `source` and their history into the analytics tenant `target`, pseudonymised;
    (entities, temporal instances) written. Run again, it replaces the copies (the pseudonyms do not change)."""
    entities = await store.scan(source, EntityFilter())
    hidden = {e["id"] for e in entities if personal_entity_type(e["type"]) is not None}
    copies = {c["id"]: c for c in (pseudonymiser.pseudonymise_entity(e, hidden) for e in entities)}
    if copies:
        await store.write(target, sorted(copies), lambda _current: WritePlan(dict(copies)), create_tenant=True)
    written = 0
    records = await store.temporal_entities(source, EntityFilter())
    types = {r.id: r.type for r in records}
    history = await store.temporal_instances(source, sorted(types), InstanceQuery())
    for eid, attrs in history.items():
        original: Entity = {
            "id": eid,
            "type": types[eid],
            "attrs": {a: [i.body for i in insts] for a, insts in attrs.items()},
        }
        shown = pseudonymiser.pseudonymise_entity(original, hidden)
        instances = [
            TemporalInstance(attr, inst.instance_id, body)
            for attr, bodies in shown["attrs"].items()
            for inst, body in zip(attrs[attr], bodies, strict=True)
        ]
        await store.temporal_delete(target, shown["id"])
        await store.temporal_add(target, shown["id"], {"type": types[eid]}, instances, create=True)
        written += len(instances)
    return len(copies), written
