"""The conformance cases, one module per area of the specification; each module registers its cases on import."""
