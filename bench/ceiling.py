"""The stack ceiling: a bare Starlette app that answers every GET with the bytes of one broker entity.

Run by bench/run.py as `python bench/ceiling.py PORT BODY_FILE`; BODY_FILE is JSON with the body and headers
that the broker sent for one GET. The uvicorn options are those of `agora serve` (broker/cli.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build_app(body: bytes, headers: dict[str, str]) -> Starlette:
    async def entity(request: Request) -> Response:
        return Response(body, headers=headers)

    return Starlette(routes=[Route("/{path:path}", entity, methods=["GET"])])


def main() -> None:
    port, body_file = int(sys.argv[1]), Path(sys.argv[2])
    saved = json.loads(body_file.read_text())
    app = build_app(saved["body"].encode(), saved["headers"])
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
