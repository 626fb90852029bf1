"""The web console at /console (issue 21, records 0400, 0402): static files of this package, no CDN and no tiles
from outside. The page itself holds no data: every entity, history and status it shows comes from the NGSI-LD API
with the user's own credentials, so that it shows only what the user may see.

Its files answer without credentials (like the OpenAPI document: a browser asks for a page before anyone signs
in) under a Content Security Policy of their own, strict as the API's: scripts, styles, workers and connections
from this origin only, no inline script or style element, never framed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from broker.console.config import console_config

STATIC: Final = Path(__file__).parent / "static"
PREFIX: Final = "/console"

#: The page's own policy: 'self' for what the code loads; images also from data: and blob: URLs (MapLibre's
#: canvas images), connections also to the OpenID issuers the broker trusts (the token endpoint of a sign-in).
BASE_POLICY: Final = (
    "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The media types served: the browser refuses a module script under any other (`.mjs` is unknown to some
#: Python versions' mimetypes); anything else of the folder is not served.
MEDIA: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".geojson": "application/geo+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
#: The vendored packages change only with a release (console/vendor.sh): kept a day; the console's own files are
#: checked each time (their ETag makes that a 304).
VENDOR_CACHE: Final = "public, max-age=86400"
OWN_CACHE: Final = "no-cache"


def content_policy(connect: tuple[str, ...] = ()) -> str:
    return f"{BASE_POLICY}; connect-src 'self'{''.join(' ' + c for c in connect)}"


class ConsoleFiles(StaticFiles):
    """The static folder with the media types above, cache headers, and 404 for a file of another kind; served
    by a Route (its `path` parameter), as every route of the app is one."""

    def get_path(self, scope: Scope) -> str:
        return os.path.normpath(str(scope["path_params"]["path"]))

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        suffix = Path(full_path).suffix
        if suffix not in MEDIA:
            return Response("Not Found", status_code=404, media_type="text/plain")
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["content-type"] = MEDIA[suffix]
        vendored = scope["path"].startswith(f"{PREFIX}/static/vendor/")
        response.headers["cache-control"] = VENDOR_CACHE if vendored else OWN_CACHE
        _with_policy(response, scope)
        return response


def _with_policy(response: Response, scope: Scope) -> None:
    response.headers["content-security-policy"] = content_policy(_issuer_origins(scope))
    response.headers["cross-origin-opener-policy"] = "same-origin"


def _issuer_origins(scope: Scope) -> tuple[str, ...]:
    app = scope.get("app")
    state = getattr(getattr(app, "state", None), "broker", None)
    if state is None:
        return ()
    return tuple(sorted({c.origin for c in console_config(state.settings).issuers}))


async def page(request: Request) -> Response:
    response = FileResponse(STATIC / "index.html", headers={"cache-control": OWN_CACHE})
    response.headers["content-type"] = MEDIA[".html"]
    _with_policy(response, request.scope)
    return response


async def config(request: Request) -> Response:
    """What the page needs to know before it calls the API: whether credentials are required and the OpenID
    issuers it may sign in with (record 0402)."""
    settings = request.app.state.broker.settings
    response = Response(console_config(settings).json(), media_type="application/json")
    response.headers["cache-control"] = "no-store"
    return response


ROUTES = [
    # "/console/" too: broker.http.paths.TrailingSlash serves it as "/console". No API resources: not in the
    # OpenAPI document.
    Route(PREFIX, page, methods=["GET", "HEAD"], include_in_schema=False),
    Route(f"{PREFIX}/config.json", config, methods=["GET", "HEAD"], include_in_schema=False),
    Route(f"{PREFIX}/static/{{path:path}}", ConsoleFiles(directory=STATIC), include_in_schema=False),
]
