"""The DCAT-AP catalogue of the published datasets (issue 19, record 0340), as an rdflib graph.

DCAT-AP 3.0.0 (SEMIC): a dcat:Catalog with its title, description and publisher (a foaf:Agent); each published
dataset a dcat:Dataset with title, description, publisher, keywords, update frequency (dct:Frequency of the EU
frequency table), spatial coverage (a dct:Location with the dcat:bbox of its entities' locations, a GeoSPARQL
WKT polygon) and temporal coverage (a dct:PeriodOfTime with dcat:startDate and dcat:endDate); and one
dcat:Distribution per format with its access and download URL, licence (a dct:LicenseDocument), dct:format (the EU
file-type table) and dcat:mediaType (IANA). tests/unit/test_opendata_catalog.py validates the graph against the
official DCAT-AP 3.0.0 SHACL shapes with pySHACL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

from broker.opendata.dumps import FORMATS, Survey
from broker.opendata.spec import FREQUENCY_BASE, DatasetSpec

GEO: Final = Namespace("http://www.opengis.net/ont/geosparql#")
FILE_TYPE: Final = "http://publications.europa.eu/resource/authority/file-type/"
IANA: Final = "https://www.iana.org/assignments/media-types/"
#: The media types /catalog answers in, the first when the client states no preference; rdflib's format names.
MEDIA_TYPES: Final = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/rdf+xml": "xml"}
PREFIXES: Final = {"dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "geo": GEO, "xsd": XSD}


def catalogue(
    base: str, publisher: str, datasets: Iterable[tuple[DatasetSpec, Survey | None]], *, title: str = ""
) -> Graph:
    """The catalogue at `base` (the broker's public base URL, no trailing slash) of `datasets`, each with the
    survey of its last regeneration (None before the first: no coverage is stated yet)."""
    g = Graph()
    for prefix, namespace in PREFIXES.items():
        g.bind(prefix, namespace)
    cat = URIRef(f"{base}/catalog")
    g.add((cat, RDF.type, DCAT.Catalog))
    g.add((cat, DCTERMS.title, Literal(title or f"{publisher}: open data", lang="en")))
    g.add((cat, DCTERMS.description, Literal(f"The datasets {publisher} publishes from its Agora broker.", lang="en")))
    g.add((cat, DCTERMS.publisher, _agent(g, base, publisher)))
    for spec, found in datasets:
        g.add((cat, DCAT.dataset, _dataset(g, base, publisher, spec, found)))
    return g


def dataset_iri(base: str, dataset_id: str) -> str:
    return f"{base}/catalog/datasets/{dataset_id}"


def download_url(base: str, dataset_id: str, fmt: str) -> str:
    return f"{dataset_iri(base, dataset_id)}/data.{fmt}"


def _agent(g: Graph, base: str, name: str) -> URIRef:
    agent = URIRef(f"{base}/catalog/publishers/{_slug(name)}")
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, FOAF.name, Literal(name)))
    return agent


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "publisher"


def _dataset(g: Graph, base: str, publisher: str, spec: DatasetSpec, found: Survey | None) -> URIRef:
    ds = URIRef(dataset_iri(base, spec.id))
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.identifier, Literal(spec.id)))
    g.add((ds, DCTERMS.title, Literal(spec.title, lang="en")))
    g.add((ds, DCTERMS.description, Literal(spec.description, lang="en")))
    g.add((ds, DCTERMS.publisher, _agent(g, base, spec.publisher or publisher)))
    for keyword in spec.keywords:
        g.add((ds, DCAT.keyword, Literal(keyword, lang="en")))
    frequency = URIRef(FREQUENCY_BASE + spec.frequency)
    g.add((frequency, RDF.type, DCTERMS.Frequency))
    g.add((ds, DCTERMS.accrualPeriodicity, frequency))
    if spec.issued:
        g.add((ds, DCTERMS.issued, Literal(spec.issued, datatype=XSD.dateTime)))
    if found is not None:
        g.add((ds, DCTERMS.modified, Literal(found.generated_at, datatype=XSD.dateTime)))
        _coverage(g, ds, found)
    for fmt in FORMATS.values():
        g.add((ds, DCAT.distribution, _distribution(g, base, spec, fmt.name, found)))
    return ds


def _coverage(g: Graph, ds: URIRef, found: Survey) -> None:
    if found.bbox is not None:
        west, south, east, north = found.bbox
        ring = f"{west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}"
        place = BNode()
        g.add((place, RDF.type, DCTERMS.Location))
        g.add((place, DCAT.bbox, Literal(f"POLYGON(({ring}))", datatype=GEO.wktLiteral)))
        g.add((ds, DCTERMS.spatial, place))
    if found.start is not None and found.end is not None:
        period = BNode()
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        g.add((period, DCAT.startDate, Literal(found.start, datatype=XSD.dateTime)))
        g.add((period, DCAT.endDate, Literal(found.end, datatype=XSD.dateTime)))
        g.add((ds, DCTERMS.temporal, period))


def _distribution(g: Graph, base: str, spec: DatasetSpec, name: str, found: Survey | None) -> URIRef:
    fmt = FORMATS[name]
    url = URIRef(download_url(base, spec.id, name))
    dist = URIRef(f"{dataset_iri(base, spec.id)}/distributions/{name}")
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCTERMS.title, Literal(f"{spec.title}: {fmt.title}", lang="en")))
    g.add((dist, DCAT.accessURL, url))
    g.add((dist, DCAT.downloadURL, url))
    licence = URIRef(spec.licence)
    g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    g.add((dist, DCTERMS.license, licence))
    file_type = URIRef(FILE_TYPE + fmt.file_type)
    g.add((file_type, RDF.type, DCTERMS.MediaTypeOrExtent))
    g.add((dist, DCTERMS.format, file_type))
    media = URIRef(IANA + fmt.media_type)
    g.add((media, RDF.type, DCTERMS.MediaType))
    g.add((dist, DCAT.mediaType, media))
    if found is not None:
        g.add((dist, DCTERMS.modified, Literal(found.generated_at, datatype=XSD.dateTime)))
        if name in found.sizes:  # the file of the last regeneration, which downloads serve
            g.add((dist, DCAT.byteSize, Literal(found.sizes[name], datatype=XSD.nonNegativeInteger)))
    return dist
