"""Reports of a run: Markdown (a table per clause, the HTTP exchanges behind each failure), JUnit XML (for CI systems),
EARL in Turtle (W3C Evaluation and Report Language, for machine-readable audit records) and JSON (what the broker's
GET /ngsi-ld/v1/agora/conformance/latest serves and its console renders, record 0405). The format follows the file
extension: .md, .xml, .ttl, .json."""

from __future__ import annotations

import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

from conformance.inventory import SPEC, title
from conformance.runner import FAILED, KNOWN_GAP, NOT_IMPLEMENTED, OUTCOMES, PASSED, Result, counts, fixed_gaps

KIT_IRI = "urn:x-agora:conformance-kit"
CASE_IRI = "urn:x-agora:conformance-case:"


@dataclass
class RunInfo:
    broker: str
    tenant: str | None
    started: dt.datetime
    duration: float
    features: dict[str, tuple[bool, str]] = field(default_factory=dict)
    coverage: list[tuple[str, str, int]] = field(default_factory=list)


def summary_line(results: Sequence[Result]) -> str:
    """The closing console line: `N passed, N failed`, then the other outcomes."""
    c = counts(results)
    return f"{c[PASSED]} passed, {c[FAILED]} failed, {c[NOT_IMPLEMENTED]} not implemented, {c[KNOWN_GAP]} known gaps"


def clause_key(clause: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in clause.split("."))


def by_clause(results: Sequence[Result]) -> list[tuple[str, list[Result]]]:
    ordered = sorted(results, key=lambda r: (clause_key(r.case.clause), r.case.name))
    return [(clause, list(group)) for clause, group in groupby(ordered, key=lambda r: r.case.clause)]


# -- Markdown -------------------------------------------------------------------------------------------------------
def markdown(results: Sequence[Result], info: RunInfo) -> str:
    c = counts(results)
    lines = [
        "# NGSI-LD conformance report",
        "",
        f"- broker: {info.broker}" + (f" (tenant {info.tenant})" if info.tenant else ""),
        f"- specification: ETSI GS CIM 009 V1.9.1 ({SPEC})",
        f"- run: {info.started.isoformat(timespec='seconds')}, {info.duration:.1f} s",
        f"- result: {summary_line(results)}",
        "",
        "| outcome | cases |",
        "|---|---|",
        *(f"| {outcome} | {c[outcome]} |" for outcome in OUTCOMES),
        "",
        "## Optional features",
        "",
        "| feature | offered | how it was decided |",
        "|---|---|---|",
        *(f"| {name} | {'yes' if on else 'no'} | {_cell(why)} |" for name, (on, why) in sorted(info.features.items())),
        "",
        "## Results per clause",
    ]
    for clause, group in by_clause(results):
        lines += _clause_table(clause, group)
    lines += _failures(results)
    lines += _gaps(results)
    lines += _coverage(info.coverage)
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _first_line(message: str) -> str:
    return _cell(message.splitlines()[0]) if message else ""


def _clause_table(clause: str, group: list[Result]) -> list[str]:
    c = counts(group)
    head = f"### {clause} {title(clause)}".rstrip()
    tally = ", ".join(f"{c[o]} {o}" for o in OUTCOMES if c[o])
    rows = [
        f"| `{r.case.name}` | {_cell(r.case.requirement)} | {r.outcome} | {_first_line(r.message)} |" for r in group
    ]
    return ["", head, "", tally, "", "| case | requirement | outcome | detail |", "|---|---|---|---|", *rows]


def _failures(results: Sequence[Result]) -> list[str]:
    failed = [r for r in results if r.outcome in (FAILED, KNOWN_GAP)]
    if not failed:
        return []
    lines = ["", "## Failures and known gaps, with the HTTP exchanges behind them"]
    for r in failed:
        gap = f" (known gap, {r.gap.ref}: {r.gap.reason})" if r.gap else ""
        lines += ["", f"### `{r.case.name}` ({r.case.clause}){gap}", "", r.case.requirement, "", "```", r.message]
        for exchange in r.exchanges:
            lines += ["", exchange.render()]
        lines.append("```")
    return lines


def _gaps(results: Sequence[Result]) -> list[str]:
    gaps = [r for r in results if r.outcome == KNOWN_GAP]
    fixed = fixed_gaps(results)
    lines = []
    if gaps:
        lines += ["", "## Known gaps", "", "| case | clause | waits for | reason |", "|---|---|---|---|"]
        lines += [f"| `{r.case.name}` | {r.case.clause} | {r.gap.ref} | {_cell(r.gap.reason)} |" for r in gaps if r.gap]
    if fixed:
        lines += ["", "## Known gaps that no longer reproduce (remove them from conformance/known_gaps.py)", ""]
        lines += [f"- `{r.case.name}` ({r.gap.ref})" for r in fixed if r.gap]
    return lines


def _coverage(coverage: list[tuple[str, str, int]]) -> list[str]:
    if not coverage:
        return []
    missing = [f"{clause} {name}" for clause, name, n in coverage if n == 0]
    lines = ["", "## Coverage of the inventory's clauses", "", "| clause | title | cases |", "|---|---|---|"]
    lines += [f"| {clause} | {_cell(name)} | {n} |" for clause, name, n in coverage]
    lines += ["", f"Clauses without a case ({len(missing)}): " + ("; ".join(missing) if missing else "none")]
    return lines


# -- JUnit XML ------------------------------------------------------------------------------------------------------
def junit(results: Sequence[Result], info: RunInfo) -> str:
    suites = ET.Element("testsuites", name="ngsi-ld-conformance", time=f"{info.duration:.3f}")
    ordered = sorted(results, key=lambda r: r.case.group)
    for group, items in groupby(ordered, key=lambda r: r.case.group):
        members = list(items)
        c = counts(members)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"conformance.{group}",
            tests=str(len(members)),
            failures=str(c[FAILED]),
            errors="0",
            skipped=str(c[NOT_IMPLEMENTED] + c[KNOWN_GAP]),
            time=f"{sum(r.duration for r in members):.3f}",
            timestamp=info.started.isoformat(timespec="seconds"),
        )
        for r in members:
            _testcase(suite, r)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, r: Result) -> None:
    element = ET.SubElement(
        suite, "testcase", classname=f"conformance.{r.case.group}", name=r.case.name, time=f"{r.duration:.3f}"
    )
    ET.SubElement(element, "properties").extend(
        [
            ET.Element("property", name="clause", value=r.case.clause),
            ET.Element("property", name="requirement", value=r.case.requirement),
        ]
    )
    details = "\n\n".join([r.message, *(e.render() for e in r.exchanges)])
    if r.outcome == FAILED:
        ET.SubElement(element, "failure", message=r.message.splitlines()[0] if r.message else "failed").text = details
    elif r.outcome == NOT_IMPLEMENTED:
        ET.SubElement(element, "skipped", type="not-implemented", message=f"not implemented: {r.message}")
    elif r.outcome == KNOWN_GAP and r.gap:
        message = f"known gap ({r.gap.ref}): {r.gap.reason}"
        ET.SubElement(element, "skipped", type="known-gap", message=message).text = details


# -- EARL (Turtle) --------------------------------------------------------------------------------------------------
def earl(results: Sequence[Result], info: RunInfo) -> str:
    from rdflib import BNode, Graph, Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, FOAF, RDF, RDFS, XSD

    EARL = Namespace("http://www.w3.org/ns/earl#")
    DOAP = Namespace("http://usefulinc.com/ns/doap#")
    g = Graph()
    g.bind("earl", EARL)
    g.bind("dcterms", DCTERMS)
    g.bind("doap", DOAP)
    g.bind("foaf", FOAF)
    kit, subject = URIRef(KIT_IRI), URIRef(info.broker)
    g.add((kit, RDF.type, EARL.Software))
    g.add((kit, RDF.type, EARL.Assertor))
    g.add((kit, DCTERMS.title, Literal("Agora NGSI-LD conformance kit")))
    g.add((subject, RDF.type, EARL.TestSubject))
    g.add((subject, DCTERMS.description, Literal("NGSI-LD broker under test")))
    outcome = {PASSED: EARL.passed, FAILED: EARL.failed, NOT_IMPLEMENTED: EARL.inapplicable, KNOWN_GAP: EARL.failed}
    for r in results:
        test = URIRef(CASE_IRI + r.case.name)
        g.add((test, RDF.type, EARL.TestCase))
        g.add((test, DCTERMS.title, Literal(r.case.name)))
        g.add((test, DCTERMS.description, Literal(r.case.requirement)))
        g.add((test, RDFS.seeAlso, URIRef(f"{SPEC}#clause-{r.case.clause}")))
        assertion, result = BNode(), BNode()
        g.add((assertion, RDF.type, EARL.Assertion))
        g.add((assertion, EARL.assertedBy, kit))
        g.add((assertion, EARL.subject, subject))
        g.add((assertion, EARL.test, test))
        g.add((assertion, EARL.mode, EARL.automatic))
        g.add((assertion, EARL.result, result))
        g.add((result, RDF.type, EARL.TestResult))
        g.add((result, EARL.outcome, outcome[r.outcome]))
        g.add((result, DCTERMS.date, Literal(info.started.isoformat(timespec="seconds"), datatype=XSD.dateTime)))
        note = r.message if r.outcome != KNOWN_GAP or not r.gap else f"known gap ({r.gap.ref}): {r.message}"
        if note:
            g.add((result, DCTERMS.description, Literal(note)))
    return g.serialize(format="turtle")


# -- JSON -----------------------------------------------------------------------------------------------------------
#: The `format` member of a JSON report; the broker's reader (broker.core.operations) checks it.
REPORT_FORMAT = "agora-conformance-report/1"
#: The outcomes as JSON keys and values (the report's own words, in the camelCase of NGSI-LD's members).
OUTCOME_KEYS = {PASSED: "passed", FAILED: "failed", NOT_IMPLEMENTED: "notImplemented", KNOWN_GAP: "knownGap"}


def json_report(results: Sequence[Result], info: RunInfo) -> str:
    """The run as one JSON document: the summary, the counts per clause, every case (with the HTTP exchanges behind a
    failure or a known gap), the optional features and the inventory's coverage."""
    doc = {
        "format": REPORT_FORMAT,
        "kit": "Agora NGSI-LD conformance kit",
        "specification": "ETSI GS CIM 009 V1.9.1",
        "specificationUrl": SPEC,
        "broker": info.broker,
        "tenant": info.tenant,
        "started": info.started.isoformat(timespec="seconds"),
        "durationSeconds": round(info.duration, 3),
        "counts": _tally(results),
        "features": [
            {"name": name, "offered": on, "decidedBy": why} for name, (on, why) in sorted(info.features.items())
        ],
        "clauses": [
            {"clause": clause, "title": title(clause), "counts": _tally(group)} for clause, group in by_clause(results)
        ],
        "cases": [_case_doc(r) for _, group in by_clause(results) for r in group],
        "coverage": [{"clause": clause, "title": name, "cases": n} for clause, name, n in info.coverage],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def _tally(results: Sequence[Result]) -> dict[str, int]:
    c = counts(results)
    return {key: c[outcome] for outcome, key in OUTCOME_KEYS.items()}


def _case_doc(r: Result) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": r.case.name,
        "clause": r.case.clause,
        "requirement": r.case.requirement,
        "outcome": OUTCOME_KEYS[r.outcome],
        "detail": r.message,
        "durationSeconds": round(r.duration, 3),
    }
    if r.gap is not None:
        doc["knownGap"] = {"ref": r.gap.ref, "reason": r.gap.reason}
    if r.outcome in (FAILED, KNOWN_GAP):
        doc["exchanges"] = [e.render() for e in r.exchanges]
    return doc


WRITERS: dict[str, Callable[[Sequence[Result], RunInfo], str]] = {
    ".md": markdown,
    ".xml": junit,
    ".ttl": earl,
    ".json": json_report,
}


def write_report(path: Path, results: Sequence[Result], info: RunInfo) -> None:
    """Written aside, then renamed: a broker that reads the reports' directory never sees half a report."""
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ValueError(f"report {path}: the extension must be one of {', '.join(WRITERS)}")
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    aside.write_text(writer(results, info), encoding="utf-8")
    os.replace(aside, path)
