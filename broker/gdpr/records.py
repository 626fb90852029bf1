"""Records of processing activities (GDPR art. 30(1); record 0323), generated from the personal-data marks
(ontologies/personal_data.csv), the access policy rules in the store and the retention rules.

One activity per purpose of the marks: its legal basis (art. 6(1)), the categories of personal data with the
attributes and entity types that hold them, the recipients (the subjects, roles, groups and clients of every
allow rule that may read them: a rule naming the attribute or type, or a rule on every attribute for a type
mark; administrators always), the time limits (retention rules), and the security measures the broker applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from broker.core.access import Rule, stored_rule
from broker.gdpr.retention import RetentionRule
from broker.store.base import Store
from ontologies.personal_data import LEGAL_BASES, PersonalMark, all_marks

SECURITY_MEASURES: Final = (
    "access policies per tenant, type and attribute, personal attributes denied unless a rule names them "
    "(records 0220, 0222)",
    "authentication by OIDC bearer tokens or API keys whose secrets are stored hashed (0201-0203)",
    "an audit log of every request, without attribute values (0224)",
    "TLS to clients and to Redis (0206, 0043)",
    "pseudonymisation of identifiers with AES-SIV for analytics tenants (0323)",
    "erasure that removes the bytes from the store's files (0322)",
)


@dataclass
class Activity:
    purpose: str
    legal_basis: str
    categories: dict[str, list[str]] = field(default_factory=dict)  # category -> IRIs
    recipients: set[str] = field(default_factory=lambda: {"role:admin"})
    retention: list[str] = field(default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "legalBasis": LEGAL_BASES[self.legal_basis],
            "categoriesOfPersonalData": {c: sorted(iris) for c, iris in sorted(self.categories.items())},
            "recipients": sorted(self.recipients),
            "timeLimitsForErasure": self.retention or ["kept until erased (no retention rule)"],
        }


def _who(rule: Rule) -> set[str]:
    who = {f"subject:{s}" for s in rule.subjects} | {f"role:{r}" for r in rule.roles}
    who |= {f"group:{g}" for g in rule.groups} | {f"client:{c}" for c in rule.clients}
    return who or {"any authenticated caller"}


def _reads(rule: Rule, mark: PersonalMark) -> bool:
    if rule.effect != "allow" or not {"read", "temporal", "subscribe"} & set(rule.actions):
        return False
    if mark.kind == "type":
        return mark.iri in rule.types
    return mark.iri in rule.attrs


def activities(marks: Iterable[PersonalMark], rules: list[Rule], retention: list[RetentionRule]) -> list[Activity]:
    by_purpose: dict[tuple[str, str], Activity] = {}
    for mark in marks:
        activity = by_purpose.setdefault((mark.purpose, mark.legal_basis), Activity(mark.purpose, mark.legal_basis))
        activity.categories.setdefault(mark.category, []).append(mark.iri)
        for rule in rules:
            if _reads(rule, mark):
                activity.recipients |= _who(rule)
        activity.retention += [r.text for r in retention if r.iri == mark.iri]
    return [by_purpose[k] for k in sorted(by_purpose)]


async def records(store: Store, retention: list[RetentionRule], controller: str) -> dict[str, Any]:
    rules = [stored_rule(doc) for doc in await store.list_policies()]
    return {
        "controller": controller or "(set gdpr_controller: name and contact of the controller, art. 30(1)(a))",
        "activities": [a.to_doc() for a in activities(all_marks().values(), rules, retention)],
        "securityMeasures": list(SECURITY_MEASURES),
        "transfersToThirdCountries": "none by the broker; notification endpoints are the subscribers' (art. 30(1)(e))",
    }


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# Records of processing activities (GDPR art. 30)", "", f"Controller: {doc['controller']}", ""]
    for n, act in enumerate(doc["activities"], start=1):
        lines += [f"## {n}. {act['purpose']}", "", f"- Legal basis: {act['legalBasis']}"]
        for category, iris in act["categoriesOfPersonalData"].items():
            lines.append(f"- Personal data ({category}): " + ", ".join(f"`{i}`" for i in iris))
        lines.append("- Recipients: " + ", ".join(act["recipients"]))
        lines.append("- Time limits for erasure: " + "; ".join(act["timeLimitsForErasure"]))
        lines.append("")
    lines += ["## Security measures (art. 32)", "", *(f"- {m}" for m in doc["securityMeasures"]), ""]
    lines += [f"Transfers to third countries: {doc['transfersToThirdCountries']}", ""]
    return "\n".join(lines)
