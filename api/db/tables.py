"""SQLAlchemy table mappings. The schema itself changes only through Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role in ('admin', 'member')", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = _created_at()


class DatasetBlob(Base):
    """Parquet bytes, addressed by the SHA-256 of the uploaded file, stored once however often uploaded."""

    __tablename__ = "dataset_blobs"

    content_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    parquet: Mapped[bytes] = mapped_column(LargeBinary)
    parquet_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = _created_at()


class Dataset(Base):
    """One immutable version of a named dataset."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", "version", name="owner_name_version"),
        CheckConstraint("visibility in ('private', 'team')", name="visibility"),
        Index("ix_datasets_owner_created", "owner_id", "created_at"),
        Index("ix_datasets_visibility_kind", "visibility", "kind"),
        Index("ix_datasets_content_sha256", "content_sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    visibility: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[Any]] = mapped_column(JSONB)
    content_sha256: Mapped[str] = mapped_column(ForeignKey("dataset_blobs.content_sha256"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    encoding: Mapped[str] = mapped_column(String(16))
    source_filename: Mapped[str | None] = mapped_column(Text)
    # Synthetic demo data is flagged so that nobody mistakes it for real figures.
    is_demo: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The profile is computed once at upload (datasets are immutable); `profile_version` says by which
    # profiling code (api.datasets.profile.PROFILE_VERSION), so rows profiled by older code are recomputed.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB)
    profile_version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[dt.datetime] = _created_at()


class ShareLink(Base):
    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = _created_at()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ModelVersion(Base):
    """A registered ECLO model: LightGBM text + JSON metadata in one verified bundle. Exactly one is active."""

    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint("status in ('active', 'inactive')", name="status"),
        # At most one active version; activation flips two rows in one transaction.
        Index("uq_model_versions_one_active", "status", unique=True, postgresql_where=text("status = 'active'")),
    )

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), server_default="inactive")
    source: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The full artifact metadata (feature order, vocabularies, hour bands, quantiles, bands, ...).
    model_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    target_transform: Mapped[str] = mapped_column(String(16))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    notes: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = _created_at()
    activated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        CheckConstraint("source in ('single', 'batch', 'job', 'chat')", name="source"),
        # A re-run of a batch job never duplicates a row. Partial: single and batch rows (job_id NULL) can never
        # conflict, so they skip this index (it was ~5% of a batch COPY).
        Index("job_row", "job_id", "row_index", unique=True, postgresql_where=text("job_id IS NOT NULL")),
        # Job rows have no owner of their own (their job has): leaving them out of this index halved the cost
        # of a job's COPY with the foreign key below gone (migration 0009).
        Index("ix_predictions_owner_created", "owner_id", "created_at", postgresql_where=text("owner_id IS NOT NULL")),
    )

    # Ids come in blocks of 1,000 per session (migration 0007: nextval per row was ~15 % of a job's COPY).
    id: Mapped[int] = mapped_column(BigInteger, Identity(cache=1000), primary_key=True)
    # owner_id and model_version have no foreign keys (migration 0005): their per-row RI triggers were half the
    # cost of a batch COPY. The values come from the authenticated user and the served model, and neither parent
    # is ever deleted (no route or command deletes a user, the registry never deletes a version). Whatever
    # deletes a user in future must delete that user's predictions itself: there is no ON DELETE CASCADE.
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    # Not indexed on its own: the history filter goes through ix_predictions_owner_created (owner first).
    model_version: Mapped[int] = mapped_column(Integer)
    # NULL for job rows: their features are the input row (job_id, row_index) itself.
    features: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    eclo: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    # No foreign key either (migration 0009): its RI trigger, one lookup of `jobs` per row, was most of
    # PostgreSQL's work in a job's COPY. Rows are written only by the job's own run, after the job row is
    # committed, and a job is deleted only when it could not be queued (api/jobs/services.py `submit`), before
    # anything was scored. Whatever deletes jobs in future must delete their predictions itself.
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    row_index: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = _created_at()


class Job(Base):
    """The durable record of background work; arq's Redis keys are only the transport."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"),
        CheckConstraint("kind in ('score', 'chat')", name="kind"),
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    progress: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = _created_at()
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class JobPart(Base):
    """A row range of a scoring job's input; any worker may score it (see api/predictions/repository.py)."""

    __tablename__ = "job_parts"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_row: Mapped[int] = mapped_column(BigInteger)
    stop_row: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, server_default=false())
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid of the process that scored it
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class JobInput(Base):
    """Rows submitted inline with a job, as Parquet, so the job itself only carries ids."""

    __tablename__ = "job_inputs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    parquet: Mapped[bytes] = mapped_column(LargeBinary)


class Conversation(Base):
    """A user's chat with the assistant; running token and cost totals are kept on the row."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner_updated", "owner_id", "updated_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(100))
    # The datasets of the latest turn (ids; the datasets themselves may be deleted later).
    dataset_ids: Mapped[list[Any]] = mapped_column(JSONB)
    message_count: Mapped[int] = mapped_column(Integer, server_default="0")
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost_usd: Mapped[float] = mapped_column(Float, server_default="0")
    created_at: Mapped[dt.datetime] = _created_at()
    updated_at: Mapped[dt.datetime] = _created_at()


class ChatMessage(Base):
    """One message of a conversation: the user's question or the assistant's answer with its tool calls."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        CheckConstraint("role in ('user', 'assistant')", name="role"),
        Index("ix_chat_messages_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(100))
    tool_calls: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost_usd: Mapped[float] = mapped_column(Float, server_default="0")
    cache_hit: Mapped[bool] = mapped_column(Boolean, server_default=false())
    dataset_ids: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[dt.datetime] = _created_at()
