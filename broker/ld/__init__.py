"""JSON-LD at the edge of the broker: @context resolution, term expansion and compaction of entities.

    core      the bundled NGSI-LD core @context documents (never fetched)
    termmap   a processed @context as plain dicts (PyLD runs once per distinct context, not per request)
    codec     normalized NGSI-LD <-> the canonical entity form of broker.core.model
    resolver  Link header / inline @context -> cached TermMap, fetching remote documents with httpx

Differences from PyLD, the oracle of the property tests, are listed in DEVIATIONS.md.
"""
