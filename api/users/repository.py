from __future__ import annotations

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select

from api.db.tables import User


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User

    async def by_token_hash(self, token_hash: str) -> User | None:
        return await self.session.scalar(select(User).where(User.token_hash == token_hash))

    async def by_name(self, name: str) -> User | None:
        return await self.session.scalar(select(User).where(User.name == name))
