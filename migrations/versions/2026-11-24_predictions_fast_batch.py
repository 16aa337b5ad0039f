"""predictions: cheaper inserts for sync batches (no owner/model-version foreign keys, fewer index entries)

Measured on PostgreSQL 15 for one 10,000-row batch COPY into `predictions` (~150 ms before):

- The foreign keys owner_id -> users and model_version -> model_versions made PostgreSQL run one RI trigger
  query per inserted row, ~75 ms together. Both are dropped.
  - model_version: versions are never deleted (the registry has no delete), and every prediction's version is
    the one the process serves, loaded from that table.
  - owner_id (was ON DELETE CASCADE): users are never deleted by the app either, and owner_id is the
    authenticated principal's id. Consequence: deleting a user no longer deletes their predictions; whatever
    deletes users in future must delete them itself (see api/db/tables.py).
  predictions.job_id -> jobs keeps its foreign key and cascade (batch and single rows leave it NULL).
- ix_predictions_model_version (~8 ms) is dropped: nothing looks rows up by version alone; the history filter
  (owner, optionally version) goes through ix_predictions_owner_created.
- The unique constraint job_row (job_id, row_index) becomes a unique index WHERE job_id IS NOT NULL (~7 ms):
  rows without a job can never conflict on it, and lookups by job_id = … still use it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f('fk_predictions_model_version_model_versions'), 'predictions', type_='foreignkey')
    op.drop_constraint(op.f('fk_predictions_owner_id_users'), 'predictions', type_='foreignkey')
    op.drop_index(op.f('ix_predictions_model_version'), table_name='predictions')
    op.drop_constraint('job_row', 'predictions', type_='unique')
    op.create_index('job_row', 'predictions', ['job_id', 'row_index'], unique=True,
                    postgresql_where=sa.text('job_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('job_row', table_name='predictions', postgresql_where=sa.text('job_id IS NOT NULL'))
    op.create_unique_constraint('job_row', 'predictions', ['job_id', 'row_index'])
    op.create_index(op.f('ix_predictions_model_version'), 'predictions', ['model_version'], unique=False)
    # Rows whose user or version was deleted by hand meanwhile would block the constraints. With the cascade
    # in place, a deleted user's rows would have gone too, so they go now.
    op.execute(
        "DELETE FROM predictions p WHERE p.owner_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p.owner_id)"
    )
    op.execute(
        "DELETE FROM predictions p WHERE NOT EXISTS (SELECT 1 FROM model_versions m WHERE m.version = p.model_version)"
    )
    op.create_foreign_key(op.f('fk_predictions_owner_id_users'), 'predictions', 'users', ['owner_id'], ['id'],
                          ondelete='CASCADE')
    op.create_foreign_key(op.f('fk_predictions_model_version_model_versions'), 'predictions', 'model_versions',
                          ['model_version'], ['version'])
