"""The Starlette layer of the broker. Importing it registers the `segment` and `rest` path convertors that the
routes of its modules use for ids and names that are IRIs (broker/http/paths.py)."""

from broker.http import paths as _paths  # noqa: F401 - registers the convertors before any route is compiled
