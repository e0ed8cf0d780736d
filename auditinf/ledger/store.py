"""The ledger store: an append-only, hash-chained, signed log of audit records with checkpoints.

Records are appended through one :class:`~.sequencer.Sequencer` per process (group commit: many
records per transaction, one fsync per batch; an append returns only after its batch committed).
Several processes share one store (see :mod:`.engines`): every batch takes the chain-head lock,
re-reads the head inside it and extends the chain from there, so there is one linear chain.

Each row keeps the exact canonical body bytes, their leaf hash (RFC 6962 §2.1), the Ed25519
signature over the body and the key id; the body carries ``seq``, ``prev`` and ``kid``, so the
chain verifies from the bodies alone (:mod:`.verify`). The leaves also form an RFC 6962 Merkle
tree (:mod:`.tree`, kept in memory as completed subtree hashes) over which signed checkpoints
(:mod:`.checkpoints`) are issued — every ``checkpoint_every_records`` records or
``checkpoint_every_s`` seconds, on :meth:`Ledger.checkpoint_now`, and at :meth:`Ledger.close` —
in the same transaction as the records they cover.

A log never signs two inconsistent checkpoints: opening a store for writing rebuilds the tree from
the stored leaf hashes and checks it against the latest stored checkpoint (fewer records than
its size, a different root, a gap); every batch checks the chain head and the latest checkpoint
again. On any disagreement appends and checkpoints are refused with :class:`LedgerError`
``ledger_inconsistent`` (HTTP 503) while reads keep working for the audit.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlmodel import Session, SQLModel

from ..errors import InputError, LedgerError, NotFound
from . import checkpoints
from .batch import sign_batch, stamp_batch
from .body import PreparedContent, prepare
from .canonical import GENESIS_PREV
from .checkpoints import CheckpointRow
from .engines import PG_HEAD_LOCK, open_engine, open_engines, sqlite_path
from .head import Head, read_head, read_record_head
from .keyevents import KeyEventRow
from .keys import Signer
from .records import RECORDS as _RECORDS
from .records import Receipt, RecordRow
from .sequencer import Job, Sequencer
from .tree import MerkleTree

__all__ = ["RecordRow", "Receipt", "Ledger", "open_engine"]


_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _inconsistent(reason: str) -> LedgerError:
    return LedgerError(f"ledger is inconsistent, appends refused: {reason}", code="ledger_inconsistent")


class Ledger:
    """Append and read audit records, checkpoints and proofs. Thread-safe; several processes may
    share one store."""

    def __init__(self, url: str, signer: Signer | None = None, *, create: bool = True,
                 checkpoint_every_records: int = 1000, checkpoint_every_s: float = 60.0,
                 max_batch: int = 1000) -> None:
        """Open (and with ``create``, initialise) the store at ``url`` (``sqlite:///…`` or
        ``postgresql+psycopg://…``).

        With a ``signer`` the store is opened for appending and checked against its latest
        checkpoint (see the module docstring; a failed check is reported by every later append).
        With ``create=False`` (auditing) a missing store is an error, never an empty new ledger:
        raises :class:`LedgerError` (``ledger_not_found``).
        """
        self.url = url
        self.signer = signer
        self.checkpoint_every_records = checkpoint_every_records
        self.checkpoint_every_s = checkpoint_every_s
        self._max_batch = max_batch
        path = sqlite_path(url)
        if not create and url.startswith("sqlite") and not (path and Path(path).is_file()):
            raise LedgerError(f"no ledger at {url}", code="ledger_not_found")
        try:
            # ``engine`` appends (BEGIN IMMEDIATE on SQLite), ``read_engine`` never takes the write lock
            self.engine, self.read_engine = open_engines(url)
            if create:
                SQLModel.metadata.create_all(self.engine,
                                             tables=[_RECORDS, CheckpointRow.__table__, KeyEventRow.__table__])
            elif not inspect(self.read_engine).has_table(RecordRow.__tablename__):
                raise LedgerError(f"no ledger table in {url}", code="ledger_not_found")
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open ledger store: {type(exc).__name__}") from exc
        self._tree = MerkleTree()
        self._tree_mutex = threading.Lock()  # held by a batch and by a tree catch-up
        self._writer_lock = threading.Lock()
        self._sequencer: Sequencer | None = None
        self._closed = False
        self._broken: LedgerError | None = None
        self._last_checkpoint_at = time.monotonic()
        self._checked: CheckpointRow | None = None  # the latest checkpoint, as checked against the tree
        self._writer_conn: Connection | None = None  # the writer's connection, kept between batches
        if signer is not None:
            self._check_against_latest_checkpoint()

    # -- appending -----------------------------------------------------------------------------
    def append(self, content: dict[str, Any], *, attach: Callable[[Session, int], None] | None = None,
               checkpoint: bool = False) -> Receipt:
        """Stamp ``content`` with ``v``, ``seq``, ``prev``, ``kid`` and ``ts``, sign, and commit.

        ``checkpoint=True`` signs a checkpoint covering the record in the record's own transaction
        (no second round trip), so that :meth:`covering_checkpoint` finds it — what a gate
        ``allow`` needs.

        ``attach(session, seq)``, when given, adds rows that belong to this record (e.g. the vault's
        sealed openings) to the same transaction: they commit with the record or not at all (and
        if it raises, the whole batch fails).

        Returns the receipt only after the batch holding the record committed (durable under SQLite
        ``synchronous=FULL`` / PostgreSQL's default). Raises :class:`LedgerError`: ``invalid_record``
        for content RFC 8785 cannot carry or that sets a stamp field; ``ledger_inconsistent`` when
        the store contradicts its checkpoints; ``ledger_error`` if the batch could not be committed
        — nothing of it is written (one transaction).
        """
        prepared = prepare(content)  # in the caller's thread: off the writer's serial path
        return self._submit("append", (prepared, attach, checkpoint))

    def checkpoint_now(self) -> CheckpointRow:
        """Sign a checkpoint covering every record now stored, unless the latest already does;
        returns that checkpoint. An empty log gets a checkpoint of size 0. Raises
        :class:`LedgerError` (``ledger_inconsistent``, ``ledger_error``)."""
        return self._submit("checkpoint")

    def covering_checkpoint(self, seq: int) -> tuple[CheckpointRow, list[bytes]]:
        """A checkpoint that covers record ``seq`` (signing one if none does yet) and the record's
        RFC 6962 inclusion proof against it. Raises :class:`NotFound` if there is no record ``seq``."""
        if seq < 0:
            raise NotFound(f"no record with seq {seq}")
        latest = self.latest_checkpoint()
        if latest is None or latest.size <= seq:
            if seq >= self.size():
                raise NotFound(f"no record with seq {seq}")
            latest = self.checkpoint_now()
        return latest, self.inclusion_proof(seq, latest.size)

    def _submit(self, kind: str, payload: Any = None) -> Any:
        if self.signer is None:
            raise LedgerError("ledger opened without a signing key")
        if self._broken is not None:
            raise self._broken
        sequencer = self._sequencer
        if sequencer is not None:  # the common case, without the lock (a closed sequencer refuses)
            return sequencer.submit(kind, payload)
        with self._writer_lock:
            if self._closed:
                raise LedgerError("ledger is closed", code="ledger_closed")
            if self._sequencer is None:
                self._sequencer = Sequencer(self._commit_batch, max_batch=self._max_batch)
            sequencer = self._sequencer
        return sequencer.submit(kind, payload)

    def _commit_batch(self, jobs: Sequence[Job]) -> list[Any]:
        """One transaction for ``jobs`` (runs on the writer thread): lock the head, re-read it,
        stamp, sign and insert the records (each canonicalised by its caller, :meth:`append`),
        issue a checkpoint if one is due or asked for, commit."""
        if self._broken is not None:
            raise self._broken
        signer = self.signer
        results: list[Any] = [None] * len(jobs)
        appends: list[tuple[int, PreparedContent, Any]] = [
            (index, job.payload[0], job.payload[1]) for index, job in enumerate(jobs) if job.kind == "append"]
        with self._tree_mutex:
            tree, base = self._tree, None
            try:
                conn, transaction = self._begin_batch()
                with transaction:
                    head = read_head(conn)
                    self._catch_up(conn, head)
                    if head.kid is not None and head.kid != signer.kid:  # a key event handed signing on
                        raise LedgerError(f"signing key {signer.kid} was retired; the ledger is signed by {head.kid}",
                                          code="signing_key_retired")
                    base = tree.size
                    stamped = stamp_batch([prepared for _, prepared, _ in appends], base=base,
                                          prev=tree.leaf(base - 1).hex() if base else GENESIS_PREV,
                                          kid=signer.kid, ts=_now())
                    signatures = sign_batch(signer, stamped)
                    tree.extend(record.leaf for record in stamped)
                    if stamped:
                        conn.execute(_RECORDS.insert(), [
                            {"seq": r.seq, "leaf_hash": r.leaf.hex(), "body": r.body, "signature": sig,
                             "kid": signer.kid} for r, sig in zip(stamped, signatures)])
                    attached = [(attach, r.seq) for (_, _, attach), r in zip(appends, stamped) if attach is not None]
                    if attached:
                        with Session(bind=conn) as session:
                            for attach, seq in attached:
                                attach(session, seq)
                            session.flush()
                    forced = any(job.kind == "checkpoint" or (job.kind == "append" and job.payload[2]) for job in jobs)
                    checkpoint = self._checkpoint_if_due(conn, forced, head)
            except BaseException as exc:
                if base is not None:
                    tree.truncate(base)
                self._checked = None  # it may be a checkpoint of the rolled-back transaction
                if isinstance(exc, SQLAlchemyError):
                    self._drop_writer_connection()  # it may be broken; the next batch opens another
                raise
        for (index, _, _), record, sig in zip(appends, stamped, signatures):
            results[index] = Receipt(record.seq, record.leaf.hex(), sig, signer.kid)
        return [checkpoint if job.kind == "checkpoint" else result for job, result in zip(jobs, results)]

    def _begin_batch(self) -> tuple[Connection, RootTransaction]:
        """Begin a batch's transaction, with the chain-head lock (PostgreSQL: an advisory lock;
        SQLite: ``BEGIN IMMEDIATE``), on the writer's connection. It is opened on first use and
        kept between batches (no pool checkout, reset and pre-ping per batch); when the database
        dropped it (a restart, an idle timeout), which shows here before anything was written, the
        batch begins once more on a new one."""
        for attempt in (1, 2):
            if self._writer_conn is None or self._writer_conn.closed:
                self._writer_conn = self.engine.connect()
            conn = self._writer_conn
            try:
                transaction = conn.begin()
                if conn.dialect.name == "postgresql":
                    conn.execute(_PG_LOCK, {"k": PG_HEAD_LOCK})
                return conn, transaction
            except DBAPIError as exc:
                self._drop_writer_connection()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _drop_writer_connection(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except SQLAlchemyError:
                pass  # already unusable

    def _checkpoint_if_due(self, conn: Connection, forced: bool, head: Head) -> CheckpointRow | None:
        """Inside the batch transaction: check the latest stored checkpoint against the tree (read
        and checked again only when ``head`` shows another size, root or note than the one
        checked before: the tree only grows), then sign a new one when asked (``forced``), when
        ``checkpoint_every_records`` records or ``checkpoint_every_s`` seconds have passed since
        it. Returns the latest checkpoint."""
        tree = self._tree
        stored = self._checked
        if head.checkpoint_size is None:
            stored = None
        elif stored is None or ((stored.size, stored.root_hash, stored.note)
                                != (head.checkpoint_size, head.checkpoint_root, head.checkpoint_note)):
            stored = checkpoints.latest(conn)
            reason = checkpoints.mismatch(stored, tree.size, tree.root) if stored is not None else None
            if reason:
                self._broken = _inconsistent(reason)
                raise self._broken
        self._checked = stored
        covered = -1 if stored is None else stored.size
        if tree.size <= covered:
            return stored
        due = (forced or tree.size - max(covered, 0) >= self.checkpoint_every_records
               or time.monotonic() - self._last_checkpoint_at >= self.checkpoint_every_s)
        if not due:
            return stored
        self._last_checkpoint_at = time.monotonic()
        self._checked = checkpoints.issue(conn, self.signer, tree.size, tree.root())
        return self._checked

    # -- the tree and its consistency ----------------------------------------------------------
    def _catch_up(self, conn: Connection, head: Head | None = None) -> None:
        """Extend the in-memory tree with records stored since (by this or another process);
        with the ``_tree_mutex`` held. ``head``: the store's :class:`~.head.Head`, read in this
        transaction (without it only the record table's head is read: a reader's store may
        predate the other tables). Raises ``ledger_inconsistent`` if the stored chain
        no longer extends the tree (records removed or replaced) or has a gap."""
        tree = self._tree
        stored, leaf = (head.size, head.leaf) if head is not None else read_record_head(conn)
        if stored < tree.size or (stored and stored <= tree.size and tree.leaf(stored - 1).hex() != leaf):
            self._broken = _inconsistent(f"the chain head moved back or changed at seq {stored - 1}")
            raise self._broken
        if stored == tree.size:
            return
        expected = tree.size
        result = conn.execute(select(_RECORDS.c.seq, _RECORDS.c.leaf_hash)
                              .where(_RECORDS.c.seq >= expected).order_by(_RECORDS.c.seq))
        for seq, leaf in result:
            if seq != expected or not isinstance(leaf, str) or len(leaf) != 64:
                self._broken = _inconsistent(f"record {expected} is missing or its leaf hash is malformed")
                raise self._broken
            tree.append(bytes.fromhex(leaf))
            expected += 1

    def _check_against_latest_checkpoint(self) -> None:
        """Start-up check (see the module docstring); records the failure instead of raising, so
        that the store can still be read and audited."""
        try:
            with self._tree_mutex, self.read_engine.connect() as conn:
                # The checkpoint first: other writers may commit between the two reads (PostgreSQL
                # gives each statement its own snapshot), and a checkpoint commits with or after
                # the records it covers, so the records read next include all of them.
                stored = checkpoints.latest(conn)
                self._catch_up(conn)
        except LedgerError:
            return  # self._broken is set
        except (SQLAlchemyError, ValueError) as exc:
            self._broken = _inconsistent(f"cannot read the stored tree: {type(exc).__name__}")
            return
        if stored is not None:
            reason = checkpoints.mismatch(stored, self._tree.size, self._tree.root)
            if reason:
                self._broken = _inconsistent(reason)

    def _tree_of(self, size: int) -> MerkleTree:
        """The tree, caught up to at least ``size`` records; raises :class:`NotFound`
        (``tree_size_not_found``) when the log is smaller."""
        if self._tree.size < size:
            with self._tree_mutex, self.read_engine.connect() as conn:
                if self._tree.size < size:
                    self._catch_up(conn)
        if self._tree.size < size:
            raise NotFound(f"the log holds {self._tree.size} records, not {size}", code="tree_size_not_found")
        return self._tree

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes (32 bytes each) of records ``[start, end)``."""
        if not 0 <= start <= end:
            raise InputError(f"bad record range [{start}, {end})", code="invalid_range")
        return self._tree_of(end).leaves(start, end)

    def tree_root(self, size: int) -> bytes:
        """RFC 6962 root (32 bytes) of the first ``size`` records."""
        return self._tree_of(size).root(size)

    def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        """RFC 6962 §2.1.1 inclusion proof (leaf-to-root, 32-byte hashes) of record ``seq`` in the
        tree of the first ``tree_size`` records. Raises :class:`InputError` (``seq_not_in_tree``) if
        ``seq`` ≥ ``tree_size``; :class:`NotFound` (``tree_size_not_found``) beyond the log."""
        if not 0 <= seq < tree_size:
            raise InputError(f"record {seq} is not in a tree of {tree_size} records", code="seq_not_in_tree")
        return self._tree_of(tree_size).inclusion_proof(seq, tree_size)

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        """RFC 6962 §2.1.2 consistency proof from the tree of ``m`` records to that of ``n``
        (empty when m == n). Raises :class:`InputError` (``invalid_range``) unless 0 < m ≤ n —
        a proof from the empty tree proves nothing (RFC 9162 §2.1.4)."""
        if not 0 < m <= n:
            raise InputError(f"no consistency proof from {m} to {n} records; need 0 < from <= to",
                             code="invalid_range")
        tree = self._tree_of(n)
        return [] if m == n else tree.consistency_proof(m, n)

    # -- stored checkpoints --------------------------------------------------------------------
    def latest_checkpoint(self) -> CheckpointRow | None:
        """The stored checkpoint of the largest size, or ``None``."""
        with self.read_engine.connect() as conn:
            return checkpoints.latest(conn)

    def checkpoint_at(self, size: int) -> CheckpointRow:
        """The stored checkpoint of ``size``; raises :class:`NotFound` (``checkpoint_not_found``)."""
        with self.read_engine.connect() as conn:
            found = checkpoints.at(conn, size)
        if found is None:
            raise NotFound(f"no checkpoint of size {size}", code="checkpoint_not_found")
        return found

    def checkpoints(self, batch: int = 1000) -> Iterator[CheckpointRow]:
        """Every stored checkpoint, smallest size first, streamed in batches."""
        after = -1
        while True:
            with self.read_engine.connect() as conn:
                chunk = checkpoints.ascending(conn, after, batch)
            if not chunk:
                return
            yield from chunk
            after = chunk[-1].size

    # -- records -------------------------------------------------------------------------------
    def get(self, seq: int) -> RecordRow:
        """The record at ``seq``; raises :class:`NotFound` (404 ``not_found``)."""
        with Session(self.read_engine) as session:
            row = session.get(RecordRow, seq)
        if row is None:
            raise NotFound(f"no record with seq {seq}")
        return row

    def size(self) -> int:
        """Number of records (``max(seq) + 1``; 0 when empty)."""
        with self.read_engine.connect() as conn:
            head = conn.execute(select(_RECORDS.c.seq).order_by(_RECORDS.c.seq.desc()).limit(1)).scalar()
        return 0 if head is None else head + 1

    def rows(self, batch: int = 5000) -> Iterator[Any]:
        """Every record in ``seq`` order, streamed in batches, as read-only rows with the
        :class:`RecordRow` attributes (``seq``, ``leaf_hash``, ``body``, ``signature``, ``kid``) —
        plain result rows, several times cheaper than ORM objects for a full verify."""
        last = -1
        while True:
            with self.read_engine.connect() as conn:
                chunk = conn.execute(select(_RECORDS).where(_RECORDS.c.seq > last)
                                     .order_by(_RECORDS.c.seq).limit(batch)).all()
            if not chunk:
                return
            yield from chunk
            last = chunk[-1].seq

    def leaf_rows(self, start: int = 0, batch: int = 10000) -> Iterator[tuple[int, str, bytes]]:
        """``(seq, leaf hash hex, body)`` of every record from ``start``, in seq order — the light
        row stream hash-only checks read (:mod:`.hashcheck`). Read through the driver's own
        cursor: building result rows would cost more than hashing the bodies."""
        last = start - 1
        while True:
            with self.read_engine.connect() as conn:
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                cursor = conn.connection.dbapi_connection.cursor()
                try:
                    cursor.execute(f"SELECT seq, leaf_hash, body FROM record WHERE seq > {mark} ORDER BY seq "
                                   f"LIMIT {int(batch)}", (last,))
                    chunk = cursor.fetchall()
                finally:
                    cursor.close()
            if not chunk:
                return
            for seq, leaf, body in chunk:
                yield seq, leaf, bytes(body)
            last = chunk[-1][0]

    def close(self) -> None:
        """Sign a final checkpoint over any uncovered records (when writing and consistent), stop
        the writer and release the connections. Idempotent."""
        with self._writer_lock:
            if self._closed:
                return
            sequencer = self._sequencer
        if sequencer is not None and self._broken is None:
            try:
                self.checkpoint_now()
            except LedgerError:
                pass  # the store is failing; closing must still release it
        with self._writer_lock:
            self._closed = True
        if sequencer is not None:
            sequencer.close()
        with self._tree_mutex:  # no batch runs now: the writer thread has stopped
            if self._writer_conn is not None:
                self._writer_conn.close()
                self._writer_conn = None
        self.engine.dispose()
        self.read_engine.dispose()
