"""job_parts: a scoring job's input in row ranges that any worker can score

Each part is scored and committed in one transaction that holds the part's row lock (FOR UPDATE SKIP LOCKED):
its predictions, `done`, and the job's progress and running summary commit together, so a part is stored
exactly once however many workers share the job, and the part of a worker that died is free again as soon
as PostgreSQL notices its connection closed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'job_parts',
        sa.Column('job_id', sa.BigInteger(), nullable=False),
        sa.Column('part', sa.Integer(), nullable=False),
        sa.Column('start_row', sa.BigInteger(), nullable=False),
        sa.Column('stop_row', sa.BigInteger(), nullable=False),
        sa.Column('done', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('worker', sa.String(length=128), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_parts_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'part', name=op.f('pk_job_parts')),
    )


def downgrade() -> None:
    op.drop_table('job_parts')
