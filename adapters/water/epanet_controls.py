"""EPANET [CONTROLS] and [RULES] read into structures (EPANET 2.2 manual, appendix C, "[CONTROLS]", "[RULES]").

A simple control is one line::

    LINK id status IF NODE id ABOVE|BELOW value
    LINK id status AT TIME time
    LINK id status AT CLOCKTIME time [AM|PM]

where status is OPEN, CLOSED or a numeric setting. A rule is a block of clauses::

    RULE id
    IF object id attribute relation value      (premises: IF, then AND / OR)
    THEN object id STATUS|SETTING IS value     (actions: THEN, then AND)
    ELSE ...                                   (actions)
    PRIORITY value

Both give the Smart Data Models ``operationalControl`` shape where it has one (controlledLink, controlType,
monitoredNode, triggerLevel, setting; docs/decisions/0361); the original statement is kept beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.water.epanet_inp import Line, is_number, parse_hours

NODE_OBJECTS = {"NODE": None, "JUNCTION": "Junction", "RESERVOIR": "Reservoir", "TANK": "Tank"}
LINK_OBJECTS = {"LINK": None, "PIPE": "Pipe", "PUMP": "Pump", "VALVE": "Valve"}
NODE_ATTRIBUTES = ("DEMAND", "HEAD", "GRADE", "LEVEL", "PRESSURE", "FILLTIME", "DRAINTIME")
LINK_ATTRIBUTES = ("FLOW", "STATUS", "SETTING", "POWER")
SYSTEM_ATTRIBUTES = ("DEMAND", "TIME", "CLOCKTIME")
RELATIONS = ("=", "<>", "<", ">", "<=", ">=", "IS", "NOT", "BELOW", "ABOVE")
STATUS_WORDS = ("OPEN", "CLOSED", "ACTIVE")


@dataclass
class Control:
    link: str
    status: str | None  # OPEN / CLOSED, or None when a numeric setting is given
    setting: float | None
    control_type: str  # LOWLEVEL, HILEVEL, TIMER, TIMEOFDAY (the SDM and EPANET toolkit names)
    node: str | None = None
    level: float | None = None
    seconds: float | None = None  # TIMER: since the start; TIMEOFDAY: since midnight
    statement: str = ""


def _time(words: list[str]) -> float:
    """Hours from ``time [unit]`` (a clock time with AM/PM, or a duration with SEC/MIN/HOURS/DAYS)."""
    if not words or len(words) > 2:
        raise ValueError("Time: not a time: " + repr(" ".join(words)))
    try:
        return parse_hours(words[0], words[1] if len(words) > 1 else None)
    except ValueError:
        raise ValueError("Time: not a time: " + repr(" ".join(words))) from None


def parse_control(tokens: list[str], nodes: Mapping[str, str], links: Mapping[str, str]) -> Control:
    """One [CONTROLS] line; a ValueError says ``field: reason``."""
    words = [t.upper() for t in tokens]
    if len(words) < 5 or words[0] != "LINK":
        raise ValueError("Keyword: a control reads LINK id status IF NODE id ABOVE|BELOW value, or LINK id status "
                         "AT TIME|CLOCKTIME time")  # fmt: skip
    link, status_word = tokens[1], words[2]
    if link not in links:
        raise ValueError(f"Link: unknown link {link!r}")
    status: str | None = status_word if status_word in ("OPEN", "CLOSED") else None
    if status is None and not is_number(status_word):
        raise ValueError(f"Status: not OPEN, CLOSED or a number: {tokens[2]!r}")
    setting = None if status is not None else float(status_word)
    statement = " ".join(tokens)
    if words[3] == "IF":
        if len(words) != 8 or words[4] != "NODE" or words[6] not in ("ABOVE", "BELOW"):
            raise ValueError("Condition: IF NODE id ABOVE|BELOW value")
        if tokens[5] not in nodes:
            raise ValueError(f"Node: unknown node {tokens[5]!r}")
        if not is_number(tokens[7]):
            raise ValueError(f"Value: not a number: {tokens[7]!r}")
        kind = "HILEVEL" if words[6] == "ABOVE" else "LOWLEVEL"
        return Control(link, status, setting, kind, node=tokens[5], level=float(tokens[7]), statement=statement)
    if words[3] == "AT" and words[4] in ("TIME", "CLOCKTIME"):
        hours = _time(tokens[5:])
        kind = "TIMER" if words[4] == "TIME" else "TIMEOFDAY"
        return Control(link, status, setting, kind, seconds=hours * 3600, statement=statement)
    raise ValueError(f"Condition: {tokens[3]!r} is not IF or AT TIME / AT CLOCKTIME")


@dataclass
class Rule:
    rule_id: str
    line: int
    premises: list[str] = field(default_factory=list)
    then_actions: list[str] = field(default_factory=list)
    else_actions: list[str] = field(default_factory=list)
    priority: float | None = None
    objects: list[tuple[str, str]] = field(default_factory=list)  # ("node"|"link", id) the rule refers to
    failed: bool = False  # a clause was refused (and reported): the rule is not judged as a whole

    def value(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ruleId": self.rule_id, "premises": self.premises, "thenActions": self.then_actions}
        if self.else_actions:
            found["elseActions"] = self.else_actions
        if self.priority is not None:
            found["priority"] = self.priority
        return found


class RuleReader:
    """[RULES], clause by clause; every clause is checked, and its object must be declared."""

    def __init__(self, nodes: Mapping[str, str], links: Mapping[str, str],
                 reject: Callable[[int, str, str], None]) -> None:  # fmt: skip
        self.nodes, self.links, self.reject = nodes, links, reject
        self.rules: list[Rule] = []
        self.part = ""  # the clause group the next AND belongs to: IF, THEN or ELSE

    def read(self, lines: list[Line]) -> list[Rule]:
        for line in lines:
            try:
                self._clause(line)
            except ValueError as exc:
                name, _, reason = str(exc).partition(": ")
                self.reject(line.number, name, reason)
                if self.rules:
                    self.rules[-1].failed = True
        for rule in self.rules:
            if not rule.failed and (not rule.premises or not rule.then_actions):
                self.reject(rule.line, "RULE", f"rule {rule.rule_id!r} needs an IF clause and a THEN clause")
        return self.rules

    def _clause(self, line: Line) -> None:
        words = [t.upper() for t in line.tokens]
        head = words[0]
        if head == "RULE":
            if len(words) != 2:
                raise ValueError("RULE: needs one rule id")
            if any(r.rule_id == line.tokens[1] for r in self.rules):
                raise ValueError(f"RULE: duplicate rule id {line.tokens[1]!r}")
            self.rules.append(Rule(line.tokens[1], line.number))
            self.part = ""
            return
        if not self.rules:
            raise ValueError(f"{line.tokens[0]}: a clause outside any RULE")
        rule = self.rules[-1]
        if head == "PRIORITY":
            if len(words) != 2 or not is_number(words[1]):
                raise ValueError("PRIORITY: needs one number")
            rule.priority = float(words[1])
            return
        text = " ".join(line.tokens)
        order = {"IF": "", "THEN": "IF", "ELSE": "THEN"}
        if head in order:
            if self.part != order[head]:
                raise ValueError(f"{line.tokens[0]}: out of order (IF, then THEN, then ELSE)")
            self.part = head
        elif not ((head == "AND" and self.part) or (head == "OR" and self.part == "IF")):
            raise ValueError(f"{line.tokens[0]}: not RULE, IF, AND, OR, THEN, ELSE or PRIORITY here")
        if self.part == "IF":
            self._premise(line.tokens[1:], rule)
            rule.premises.append(text)
        else:
            self._action(line.tokens[1:], rule)
            (rule.then_actions if self.part == "THEN" else rule.else_actions).append(text)

    def _object(self, tokens: list[str], rule: Rule) -> int:
        """Check the object and id of a clause; the index of the attribute word."""
        kind = tokens[0].upper() if tokens else ""
        if kind == "SYSTEM":
            return 1
        if (kind not in NODE_OBJECTS and kind not in LINK_OBJECTS) or len(tokens) < 2:
            raise ValueError("Object: not NODE, JUNCTION, RESERVOIR, TANK, LINK, PIPE, PUMP, VALVE or SYSTEM")
        native = tokens[1]
        known, wanted = (self.nodes, NODE_OBJECTS[kind]) if kind in NODE_OBJECTS else (self.links, LINK_OBJECTS[kind])
        if native not in known or (wanted is not None and known[native] != wanted):
            raise ValueError(f"ID: unknown {kind.lower()} {native!r}")
        rule.objects.append(("node" if kind in NODE_OBJECTS else "link", native))
        return 2

    def _premise(self, tokens: list[str], rule: Rule) -> None:
        at = self._object(tokens, rule)
        kind = tokens[0].upper()
        allowed = SYSTEM_ATTRIBUTES if kind == "SYSTEM" else NODE_ATTRIBUTES if kind in NODE_OBJECTS \
            else LINK_ATTRIBUTES  # fmt: skip
        rest = [t.upper() for t in tokens[at:]]
        if len(rest) < 3 or rest[0] not in allowed:
            raise ValueError(f"Attribute: not one of {', '.join(allowed)}")
        if rest[1] not in RELATIONS:
            raise ValueError(f"Relation: {tokens[at + 1]!r} is not one of {' '.join(RELATIONS)}")
        values = tokens[at + 2 :]
        if rest[0] in ("TIME", "CLOCKTIME"):
            _time(values)
        elif rest[0] == "STATUS":
            if len(values) != 1 or values[0].upper() not in (*STATUS_WORDS, "CLOSED"):
                raise ValueError(f"Value: not OPEN, CLOSED or ACTIVE: {' '.join(values)!r}")
        elif len(values) != 1 or not is_number(values[0]):
            raise ValueError(f"Value: not a number: {' '.join(values)!r}")

    def _action(self, tokens: list[str], rule: Rule) -> None:
        if tokens and tokens[0].upper() == "SYSTEM":
            raise ValueError("Object: an action acts on a link (LINK, PIPE, PUMP or VALVE)")
        at = self._object(tokens, rule)
        if tokens[0].upper() in NODE_OBJECTS:
            raise ValueError("Object: an action acts on a link (LINK, PIPE, PUMP or VALVE)")
        rest = [t.upper() for t in tokens[at:]]
        if len(rest) != 3 or rest[0] not in ("STATUS", "SETTING") or rest[1] != "IS":
            raise ValueError("Action: reads STATUS IS OPEN|CLOSED|ACTIVE or SETTING IS value")
        if rest[0] == "STATUS" and rest[2] not in STATUS_WORDS:
            raise ValueError(f"Value: not OPEN, CLOSED or ACTIVE: {tokens[at + 2]!r}")
        if rest[0] == "SETTING" and not is_number(rest[2]):
            raise ValueError(f"Value: not a number: {tokens[at + 2]!r}")
