"""The ``record`` table and the receipt a caller gets for a committed record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary
from sqlmodel import Column, Field, SQLModel

from .checkpoints import SIZE_TYPE

__all__ = ["RecordRow", "Receipt", "RECORDS"]


class RecordRow(SQLModel, table=True):
    """One stored record. ``body`` is the RFC 8785 canonical JSON, byte for byte."""

    __tablename__ = "record"

    seq: int = Field(sa_column=Column(SIZE_TYPE, primary_key=True, autoincrement=False))
    leaf_hash: str = Field(max_length=64, index=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: str = Field(max_length=128)
    kid: str = Field(max_length=16)


RECORDS = RecordRow.__table__


@dataclass(frozen=True)
class Receipt:
    """What the caller gets for a committed record: ``{seq, leaf_hash, signature, kid}``."""

    seq: int
    leaf_hash: str
    signature: str  # base64 Ed25519 signature over the body
    kid: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_hash": self.leaf_hash, "signature": self.signature, "kid": self.kid}
