"""datasets.profile_version: which profiling code computed a dataset's stored summary

Rows that exist when this runs were profiled before coordinate pairs were recognised by their values
(x좌표/y좌표 holding WGS84 degrees), so they get version 1 and the application recomputes their profile from
the stored Parquet blob (`api.datasets.reprofile`: on read, on a re-upload of the same bytes, and by the
worker's `refresh_stale_profiles` maintenance job, which also runs when a worker starts). The recomputation
is not done here: it needs the profiling code of the running release, which a migration must not freeze.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('datasets', sa.Column('profile_version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    op.drop_column('datasets', 'profile_version')
