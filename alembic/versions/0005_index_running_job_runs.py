"""a partial index of the job runs still running

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Every worker looks for runs left 'running' by processes that died, once per heartbeat (10 s;
``jobs.app.fail_runs_of_dead_processes``), and after a database outage for runs whose queue job
ended (``cli.runner.fail_orphaned_runs``). Both filter on ``status = 'running'``: a handful
of rows in a table of tens of thousands per market, which without this index each look scans
whole. Downgrade drops it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_job_runs_status"), "job_runs", ["status"], unique=False,
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_job_runs_status"), table_name="job_runs")
