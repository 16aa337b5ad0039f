"""predictions: job rows skip the per-row foreign-key check and the owner index

Measured on PostgreSQL 15 (300,000 job rows inserted into copies of `predictions`, after a CHECKPOINT, the
second of two runs each): 2.77 s with the foreign key job_id -> jobs, 1.10 s without it, 0.69 s when
ix_predictions_owner_created also leaves out rows without an owner. A job is a third of PostgreSQL's CPU in
a scoring job's COPY (the RI trigger runs one lookup of `jobs` per inserted row); job rows carry no owner
(their job has one), so indexing their NULL owner_id only cost inserts.

- fk_predictions_job_id_jobs (ON DELETE CASCADE) is dropped. A job's rows are written only by its own run,
  with the job's id, after the job row is committed; the app deletes a job only when it could not be queued,
  before anything was scored. Whatever deletes jobs in future must delete their predictions itself (see
  api/db/tables.py).
- ix_predictions_owner_created becomes partial (owner_id IS NOT NULL): the history's `owner_id = …` implies
  it, so the planner still uses it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f('fk_predictions_job_id_jobs'), 'predictions', type_='foreignkey')
    op.drop_index(op.f('ix_predictions_owner_created'), table_name='predictions')
    op.create_index('ix_predictions_owner_created', 'predictions', ['owner_id', 'created_at'],
                    postgresql_where=sa.text('owner_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_predictions_owner_created', table_name='predictions',
                  postgresql_where=sa.text('owner_id IS NOT NULL'))
    op.create_index(op.f('ix_predictions_owner_created'), 'predictions', ['owner_id', 'created_at'])
    # With the cascade in place, rows of a deleted job would have gone with it: they go now.
    op.execute(
        "DELETE FROM predictions p WHERE p.job_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = p.job_id)"
    )
    op.create_foreign_key(op.f('fk_predictions_job_id_jobs'), 'predictions', 'jobs', ['job_id'], ['id'],
                          ondelete='CASCADE')
