"""job runs name the PID namespace of their process

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

A run outside the queue that is left 'running' is failed when its process is gone
(``jobs.app.fail_runs_of_dead_processes``), judged by ``host:pid``. But a pid names a process
only within one PID namespace, and containers can share a hostname (host networking, Kubernetes
``hostNetwork``) while each has its own: a worker in one would find another's live backfill
"gone" and fail it. So each run records its process's namespace (the inode of
``/proc/self/ns/pid``) and only processes of the same namespace judge it; runs from before
this revision (NULL) are judged by host as before. Downgrade drops the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_runs", sa.Column("pid_namespace", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("job_runs", "pid_namespace")
