"""A notification receiver for the benchmark: counts the entities notified to it (POST), and says how many on GET.

Run by bench/run.py as `python bench/receiver.py PORT`, pinned to the load generator's core, so that receiving
never competes with the broker for its core.
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build_app() -> Starlette:
    seen = {"notifications": 0, "entities": 0}

    async def notify(request: Request) -> Response:
        body = orjson.loads(await request.body())
        seen["notifications"] += 1
        seen["entities"] += len(body.get("data", []))
        return Response(status_code=204)

    async def count(request: Request) -> Response:
        return JSONResponse(seen)

    return Starlette(routes=[Route("/notify", notify, methods=["POST"]), Route("/count", count, methods=["GET"])])


def main() -> None:
    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
