"""Ingest bookkeeping: a watermark per (market, dataset) and a log of job runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class IngestWatermark(Base):
    """``watermark`` = open time of the next bar/event to fetch (everything before is stored)."""

    __tablename__ = "ingest_watermarks"

    market_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    dataset: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class JobRun(Base):
    """One run of one job; failed and rejected runs keep the reason.

    ``worker`` names the process (``host:pid``, in PID namespace ``pid_namespace``) and
    ``procrastinate_job_id`` the queue job that
    ran it (None outside a worker, e.g. ``liqmap backfill``): a run left ``running`` by a worker
    that died is found through its stalled queue job and marked failed.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        Index(None, "job", "exchange", "symbol", "dataset", "started_at"),
        Index(None, "procrastinate_job_id"),
        # the few runs still running, which the dead-process and orphan checks look for
        Index(None, "status", postgresql_where=text("status = 'running'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32))  # ingest | materialize | import | backfill
    exchange: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(64))
    dataset: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running|succeeded|failed|rejected
    rows_written: Mapped[int] = mapped_column(BigInteger, server_default="0")
    watermark_from: Mapped[datetime | None]
    watermark_to: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(128))
    # the inode of the process's PID namespace (Linux): its pid means something only there
    pid_namespace: Mapped[int | None] = mapped_column(BigInteger)
    procrastinate_job_id: Mapped[int | None] = mapped_column(BigInteger)
