"""SQLAlchemy engines for the ledger store, chosen by URL.

- ``sqlite:///path``: WAL journal, ``synchronous=FULL`` (the WAL is fsynced at every commit),
  ``busy_timeout`` 30 s. Two engines: the *write* engine opens every transaction with
  ``BEGIN IMMEDIATE`` (the database write lock, taken before the chain head is read, so appends
  from several processes serialise); the *read* engine opens plain deferred ``BEGIN``
  transactions, which read a WAL snapshot and never wait for or block the writer.
- ``postgresql+psycopg://…``: one engine; appends take a transaction-scoped advisory lock on the
  chain head (:data:`PG_HEAD_LOCK`) before reading it; reads take no lock.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

__all__ = ["open_engine", "open_engines", "sqlite_path", "PG_HEAD_LOCK"]

PG_HEAD_LOCK = 0x6175_6469_7469_6E66  # "auditinf"


def sqlite_path(url: str) -> str | None:
    """The file path of a ``sqlite:///`` URL (``None`` for other stores or in-memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return path if path and path != ":memory:" else None


def open_engine(url: str, *, write: bool = True) -> Engine:
    """One engine for ``url``; for SQLite, ``write`` picks ``BEGIN IMMEDIATE`` over ``BEGIN``."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy event signature
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own; we do below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql(begin)

    return engine


def open_engines(url: str) -> tuple[Engine, Engine]:
    """``(write, read)`` engines for ``url`` (the same engine twice for PostgreSQL)."""
    write = open_engine(url, write=True)
    return write, (open_engine(url, write=False) if url.startswith("sqlite") else write)
