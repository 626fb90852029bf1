"""Open data (issue 19, records 0340-0344): datasets of the store an administrator publishes, the DCAT-AP catalogue
of /catalog (catalog), their streamed distributions (dumps), what a dataset is (spec), and the service that
publishes, serves and regenerates them (service)."""
