"""Per-client daily spend (USD, UTC days) from recorded costs, and the budget check.

Spend is the sum of the ``cost_usd`` of the client's records of the current UTC day. It is read
from the ledger once, at start-up (:meth:`BudgetTracker.seed` walks back from the newest record
only as far as today's first one), then kept in memory and increased after each committed
record (:meth:`BudgetTracker.add`). The check happens before any model call; requests running
concurrently may each pass it, so the limit can be exceeded by at most their costs.
"""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Callable

from sqlmodel import Session, select

from ..errors import BudgetExhausted
from ..ledger import Ledger
from ..ledger.store import RecordRow
from .spec import BudgetPolicy, usd_text

__all__ = ["BudgetTracker"]


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


class BudgetTracker:
    """In-memory spend per (UTC day, client id). Thread-safe."""

    def __init__(self, today: Callable[[], date] = _utc_today) -> None:
        self._today = today
        self._lock = threading.Lock()
        self._day = today()
        self._spent: dict[str, Decimal] = {}

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:
            self._day, self._spent = day, {}

    def seed(self, ledger: Ledger, batch: int = 500) -> int:
        """Add today's recorded costs, newest record first, stopping at the first record of an
        earlier day. Returns the number of records read."""
        with self._lock:
            self._roll()
            today, read, upper = self._day, 0, None
            while True:
                query = select(RecordRow.seq, RecordRow.body).order_by(RecordRow.seq.desc()).limit(batch)
                if upper is not None:
                    query = query.where(RecordRow.seq < upper)
                with Session(getattr(ledger, "read_engine", ledger.engine)) as session:
                    rows = session.exec(query).all()
                for seq, body in rows:
                    record = json.loads(body)
                    if datetime.fromisoformat(record["ts"]).astimezone(timezone.utc).date() < today:
                        return read
                    read += 1
                    if record.get("cost_usd") and record.get("client_id"):
                        client = record["client_id"]
                        self._spent[client] = self._spent.get(client, Decimal(0)) + Decimal(record["cost_usd"])
                if len(rows) < batch:
                    return read
                upper = rows[-1][0]

    def spent(self, client_id: str) -> Decimal:
        """USD the client has spent today (UTC)."""
        with self._lock:
            self._roll()
            return self._spent.get(client_id, Decimal(0))

    def add(self, client_id: str, cost_usd: Decimal) -> None:
        """Count a committed record's cost."""
        if not cost_usd:
            return
        with self._lock:
            self._roll()
            self._spent[client_id] = self._spent.get(client_id, Decimal(0)) + cost_usd

    def check(self, budgets: BudgetPolicy, client_id: str) -> None:
        """Raise :class:`BudgetExhausted` (402 ``budget_exhausted``) when the client's spend today
        has reached its limit (``budgets.clients[client_id]``, else ``default_daily_usd``)."""
        limit = budgets.limit_for(client_id)
        if limit is None:
            return
        spent = self.spent(client_id)
        if spent >= limit:
            raise BudgetExhausted(f"client '{client_id}' has spent {usd_text(spent)} USD of its {usd_text(limit)} USD "
                                  "budget for today (UTC); no model was called", field="X-Client-Id")
