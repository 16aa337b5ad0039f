"""Users and their API tokens."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.tables import User
from api.errors import Conflict, InvalidInput
from api.users.repository import UserRepository
from api.users.tokens import hash_token, new_token


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, detached from any session."""

    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = UserRepository(session=session)

    async def create(self, name: str, *, admin: bool = False) -> tuple[User, str]:
        """Create a user and return it with its token (the only time the token exists in clear)."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("사용자 이름은 1~100자여야 합니다.", detail={"field": "name"})
        if await self.repository.by_name(name) is not None:
            raise Conflict(f"이미 있는 사용자 이름입니다: {name}", detail={"name": name})
        token = new_token("hab")
        user = await self.repository.add(
            User(name=name, role=Role.ADMIN if admin else Role.MEMBER, token_hash=hash_token(token))
        )
        return user, token

    async def rotate_token(self, name: str) -> str:
        user = await self.repository.by_name(name)
        if user is None:
            raise InvalidInput(f"없는 사용자입니다: {name}")
        token = new_token("hab")
        user.token_hash = hash_token(token)
        await self.session.flush()
        return token

    async def list(self) -> list[User]:
        return list(await self.repository.list())

    async def authenticate(self, token: str) -> Principal | None:
        user = await self.repository.by_token_hash(hash_token(token))
        return None if user is None else Principal(id=user.id, name=user.name, role=user.role)


def _mark_retrieved(task: asyncio.Task[Principal | None]) -> None:
    if not task.cancelled():
        task.exception()


class PrincipalCache:
    """Token-hash → principal for a short time, so hot endpoints skip a database round trip per request.

    The TTL bounds how long a deleted user or rotated token keeps working in this process. Requests that
    miss together (every connection of a busy client when an entry expires) share one lookup: without that,
    each opened a session and, past the pool's size, a new PostgreSQL connection (docs/decisions/0010).
    """

    def __init__(self, ttl_seconds: float = 30.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._loading: dict[str, asyncio.Task[Principal | None]] = {}
        self.lookups = 0  # lookups started (each shared by the requests that missed together)

    def get(self, token: str) -> Principal | None:
        return self._cached(hash_token(token))

    def put(self, token: str, principal: Principal) -> None:
        self._store(hash_token(token), principal)

    async def get_or_load(self, token: str, load: Callable[[str], Awaitable[Principal | None]]) -> Principal | None:
        """The cached principal, else `load(token)`'s, awaited once however many requests are waiting for it."""
        key = hash_token(token)
        principal = self._cached(key)
        if principal is not None:
            return principal
        loading = self._loading.get(key)
        if loading is None:
            self.lookups += 1
            loading = asyncio.create_task(self._load(key, token, load))
            # When every waiter was cancelled, nobody awaits a failure: mark it seen (each waiter that is still
            # there gets it raised anyway), so asyncio does not log "exception was never retrieved".
            loading.add_done_callback(_mark_retrieved)
            self._loading[key] = loading
        return await asyncio.shield(loading)  # one waiter's cancellation does not cancel the others' lookup

    async def _load(self, key: str, token: str, load: Callable[[str], Awaitable[Principal | None]]) -> Principal | None:
        try:
            principal = await load(token)
            if principal is not None:
                self._store(key, principal)
            return principal
        finally:
            self._loading.pop(key, None)

    def _cached(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _store(self, key: str, principal: Principal) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, principal)
