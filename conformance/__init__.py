"""The NGSI-LD conformance kit: cases organised by the clauses of ETSI GS CIM 009 V1.9.1, checked only through HTTP
(and MQTT where a clause is about MQTT) against any broker URL.

Entry points: `agora conformance --broker URL` (conformance/cli.py), `pytest --broker-url URL`
(conformance/pytest_plugin.py). Cases live in conformance/cases/; see conformance/README.md.
"""
