"""Path segments that hold IRIs: entity ids, attribute names, type names and other ids are URIs, and URIs may
contain '/' (`https://example.org/buildings/1`, an attribute with no term in the @context). A client sends such a
value percent-encoded in one path segment (RFC 3986 section 3.3), but an ASGI server hands the app the decoded
path, where `%2F` can no longer be told from a separator, and the router would never match it.

So when the raw path holds an encoded '/' or '%', `EncodedSlashes` gives the router a path decoded segment by
segment, with each '/' and '%' inside a segment kept escaped (`%2F`, `%25`); the route parameters declared with
the `segment` (one segment) or `rest` (to the end) convertors restore them. A path without those escapes is not
touched, and then holds neither `%2F` nor `%25`, so the convertors restore nothing: exact both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


def _unescape(value: str) -> str:
    # '/' first: every '%' left after it starts a "%25" (see segment_path), so the order makes the two exact.
    return value.replace("%2F", "/").replace("%25", "%")


class SegmentConvertor(Convertor[str]):
    """One path segment, '/' and '%' restored."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return _unescape(value)

    def to_string(self, value: str) -> str:
        return quote_segment(value)


class RestConvertor(SegmentConvertor):
    """The rest of the path (a type or attribute IRI may also come unencoded), '/' and '%' restored."""

    regex = ".*"


register_url_convertor("segment", SegmentConvertor())
register_url_convertor("rest", RestConvertor())


def quote_segment(value: str) -> str:
    """An id or name as one path segment of a URL the broker writes (Location): reserved characters that would
    end or split the segment are encoded; those of a URN (':') stay readable."""
    return quote(value, safe=":@!$&'()*+,;=")


def segment_path(raw_path: bytes) -> str:
    """The path decoded segment by segment, '%' and '/' inside a segment escaped again."""
    segments = raw_path.decode("latin-1").split("/")
    return "/".join(unquote(s).replace("%", "%25").replace("/", "%2F") for s in segments)


class EncodedSlashes:
    """ASGI middleware: the router sees encoded slashes of a segment as `%2F` (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%2" in raw and (b"%2F" in raw or b"%2f" in raw or b"%25" in raw):
            scope = {**scope, "path": segment_path(raw.split(b"?", 1)[0])}
        await self.app(scope, receive, send)


class TrailingSlash:
    """ASGI middleware: a path with a trailing '/' is served as the same path without it when a route takes that.

    The specification names its resources with the slash (clause 6.4.2: "Resource URI: /entities/", likewise
    /subscriptions/, /entityOperations/create/ ...), and clients send it so: ngsildclient POSTs to `/entities/`.
    Starlette would answer 307 Temporary Redirect to the path without it, which a client that does not follow
    redirects (httpx's default) takes for a failure, and which costs every other client a second request. Left
    alone: a path whose '/' belongs to a `rest` parameter (a type or attribute IRI may end with '/'), and one whose
    method the path without the slash does not take (PATCH /entities/ is a merge with an empty id, not a 405)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = self._routed(scope)
        await self.app(scope, receive, send)

    def _routed(self, scope: Scope) -> Scope:
        stripped = {**scope, "path": scope["path"].rstrip("/") or "/"}
        if not any(route.matches(stripped)[0] == Match.FULL for route in self.routes):
            return scope
        if any(self._slash_in_rest(route, scope) for route in self.routes):
            return scope
        return stripped

    @staticmethod
    def _slash_in_rest(route: BaseRoute, scope: Scope) -> bool:
        match, child = route.matches(scope)
        if match != Match.FULL:
            return False
        convertors: dict[str, Convertor[object]] = getattr(route, "param_convertors", {})
        params = child.get("path_params", {})
        return any(isinstance(c, RestConvertor) and params.get(name) for name, c in convertors.items())
