"""Publishing open datasets and serving them (issue 19, records 0340-0343): the operations behind
/ngsi-ld/v1/agora/datasets, `agora publish`, /catalog and its distributions, and the regeneration job.

Publishing, listing and withdrawing datasets is the `admin` action (record 0221). Reading the catalogue and the
distributions needs no right at all: they hold only what was published, with personal attributes removed, and
broker.http.authn lets anonymous GETs of /catalog through (record 0343).

The regeneration job runs every AGORA_OPENDATA_INTERVAL seconds on the one broker process that leads
"opendata" (Store.try_lead) and at once after a publication: it surveys each dataset (count, coverage, CSV
columns) into the store, where every process's catalogue reads it, and with AGORA_OPENDATA_DIR it writes the four
distribution files there from one more pass (each streamed to a temporary file, then renamed over the old one). A
download serves that file when this process has it and no GDPR erasure happened since the pass that wrote it
began (record 0325), else streams the dataset from the store as it is now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from broker.background import stop_tasks
from broker.core.access import Access
from broker.core.caller import Caller
from broker.core.errors import ResourceNotFound
from broker.core.model import now_iso
from broker.gdpr.erase import ERASURE_CURSOR
from broker.notify.outage import Outage
from broker.opendata.catalog import catalogue
from broker.opendata.dumps import FORMATS, Survey, stream, survey, write_all
from broker.opendata.spec import DatasetSpec, parse_spec
from broker.settings import Settings
from broker.store.base import Store

log = logging.getLogger("agora.opendata")

#: Seconds before a regeneration that failed is tried again (at most the interval).
RETRY_SECONDS = 5.0


class OpenData:
    def __init__(self, store: Store, access: Access, settings: Settings) -> None:
        self.store = store
        self.access = access
        self.publisher = settings.opendata_publisher
        self.interval = settings.opendata_interval
        self.directory = Path(settings.opendata_dir) if settings.opendata_dir else None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._outage = Outage(store, "open data regeneration")

    # -- the administrator's operations -----------------------------------------------------------------------
    async def _admin(self, caller: Caller) -> None:
        await self.access.require(caller, "admin", "publish or withdraw open datasets")

    async def publish(self, caller: Caller, doc: Any, expand: Callable[[str], str]) -> tuple[DatasetSpec, bool]:
        """Publish (or republish) the dataset of `doc`: (the stored spec, whether it is new)."""
        await self._admin(caller)
        spec = parse_spec(doc, expand, caller.tenant)
        stored = await self.store.get_dataset(spec.id)
        now = now_iso()
        issued = stored.get("issued", now) if stored is not None else now
        spec = DatasetSpec.from_doc({**spec.to_doc(), "issued": issued or now, "modified": now})
        new = await self.store.put_dataset(spec.to_doc())
        self._wake.set()
        return spec, new

    async def datasets(self, caller: Caller) -> list[tuple[DatasetSpec, Survey | None]]:
        await self._admin(caller)
        return await self.published()

    async def dataset(self, caller: Caller, dataset_id: str) -> tuple[DatasetSpec, Survey | None]:
        await self._admin(caller)
        return await self._require(dataset_id)

    async def withdraw(self, caller: Caller, dataset_id: str) -> None:
        await self._admin(caller)
        if not await self.store.delete_dataset(dataset_id):
            raise ResourceNotFound(f"no dataset {dataset_id}")
        if self.directory is not None:
            for fmt in FORMATS:
                self._file(dataset_id, fmt).unlink(missing_ok=True)

    # -- what everyone may read ---------------------------------------------------------------------------------
    async def published(self) -> list[tuple[DatasetSpec, Survey | None]]:
        out = []
        for doc in await self.store.list_datasets():
            state = await self.store.get_dataset_state(doc["id"])
            out.append((DatasetSpec.from_doc(doc), None if state is None else Survey.from_state(state)))
        return out

    async def catalogue(self, base: str) -> Any:
        marker = await self.store.get_cursor(ERASURE_CURSOR)
        # Files an erasure retired are not served (record 0325): the live stream has no size known in advance.
        shown = [
            (spec, found if found is None or found.erasure == marker else replace(found, sizes={}))
            for spec, found in await self.published()
        ]
        return catalogue(base, self.publisher, shown)

    async def distribution(self, dataset_id: str, fmt: str, base: str) -> AsyncIterator[bytes] | Path:
        """The file of the last regeneration when this process has one, else the dataset streamed now."""
        if fmt not in FORMATS:
            raise ResourceNotFound(f"no distribution {fmt}: the formats are {', '.join(FORMATS)}")
        spec, found = await self._require(dataset_id)
        path = self._file(dataset_id, fmt) if self.directory is not None else None
        if path is not None and path.is_file() and found is not None and await self._files_stand(found):
            return path
        if found is None:  # never surveyed: the CSV needs its columns first
            found = await survey(self.store, spec)
        return stream(self.store, spec, fmt, found, base)

    async def _files_stand(self, found: Survey) -> bool:
        """Whether no erasure happened since the pass that wrote the files began (record 0325): an erased
        subject's entity may be in them, so until the next pass the dataset is streamed as the store holds it."""
        return found.erasure == await self.store.get_cursor(ERASURE_CURSOR)

    def wake(self) -> None:
        """Regenerate at once (after an erasure in this process), rather than at the end of the interval."""
        self._wake.set()

    async def _require(self, dataset_id: str) -> tuple[DatasetSpec, Survey | None]:
        doc = await self.store.get_dataset(dataset_id)
        if doc is None:
            raise ResourceNotFound(f"no dataset {dataset_id}")
        state = await self.store.get_dataset_state(dataset_id)
        return DatasetSpec.from_doc(doc), None if state is None else Survey.from_state(state)

    # -- regeneration -------------------------------------------------------------------------------------------
    async def regenerate(self, spec: DatasetSpec, base: str = "") -> Survey:
        """Survey the dataset into the store and, with a directory, write its distribution files."""
        erasure = await self.store.get_cursor(ERASURE_CURSOR)  # before any read: see _files_stand
        found = await survey(self.store, spec)
        found.erasure = erasure
        if self.directory is not None:
            files = {fmt: self._file(spec.id, fmt) for fmt in FORMATS}
            found.sizes = await write_all(self.store, spec, found, base, files)
        await self.store.set_dataset_state(spec.id, found.to_state())
        return found

    async def regenerate_all(self, base: str = "") -> int:
        done = 0
        for doc in await self.store.list_datasets():
            await self.regenerate(DatasetSpec.from_doc(doc), base)
            done += 1
        return done

    def _file(self, dataset_id: str, fmt: str) -> Path:
        assert self.directory is not None
        return self.directory / dataset_id / f"data.{fmt}"

    def start(self, base: str) -> None:
        self._task = asyncio.create_task(self._run(base), name="agora-opendata")

    async def stop(self) -> None:
        await stop_tasks([self._task])
        self._task = None

    async def _run(self, base: str) -> None:
        while True:
            wait = self.interval
            self._wake.clear()  # before the pass: a publication during it wakes the next one at once
            try:
                if await self.store.try_lead("opendata"):
                    done = await self.regenerate_all(base)
                    if done:
                        log.info("open data: %d datasets regenerated", done)
                self._outage.ok()
            except Exception as exc:  # a store outage is logged once, anything else is a bug (record 0047)
                self._outage.failed(exc, "an open data regeneration")
                wait = min(self.interval, RETRY_SECONDS)  # not an hour without a survey after a short outage
            with contextlib.suppress(TimeoutError):  # woken by a publication, or the wait is over
                await asyncio.wait_for(self._wake.wait(), wait)
