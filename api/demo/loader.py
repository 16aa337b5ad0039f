"""Store the synthetic demo datasets through the same upload path users take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from api.datasets import schemas as s
from api.datasets.kinds import Visibility
from api.datasets.repository import DatasetRepository
from api.datasets.services import DatasetService
from api.demo.generate import generate_demo_datasets
from api.resources import Resources
from api.users.repository import UserRepository
from api.users.services import Principal, UserService

# Demo datasets belong to this account; its token is never shown, so nobody logs in as it.
DEMO_OWNER = "데모"


async def load_demo_datasets(
    resources: Resources, *, scale: float = 1.0, force: bool = False, echo: Callable[[str], object] = print
) -> list[s.Dataset]:
    async with resources.sessions() as session:
        if not force and await DatasetRepository(session=session).any_demo():
            return []
        owner = await UserRepository(session=session).by_name(DEMO_OWNER)
        if owner is None:
            owner, _ = await UserService(session).create(DEMO_OWNER)
            await session.commit()
        principal = Principal(id=owner.id, name=owner.name, role=owner.role)
        demos = await asyncio.to_thread(generate_demo_datasets, scale=scale)
        service = DatasetService(session, resources)
        stored = []
        for demo in demos:
            out = await service.upload(
                principal,
                demo.csv_bytes,
                filename=demo.filename,
                name=demo.name,
                visibility=Visibility.TEAM,
                is_demo=True,
            )
            echo(f"  {out.name}: {out.rows:,}행, 종류 {out.kind}")
            stored.append(out)
        return stored
