"""Offline audit bundles: everything an auditor needs to check the ledger without the database.

Layout of ``DIR`` (format ``auditinf-bundle/v1``):

- ``records.jsonl`` — one JSON object per line, in seq order: ``{seq, leaf_hash, kid, signature, body}``
  with ``body`` the record's exact RFC 8785 bytes as a JSON string (UTF-8, so it round-trips byte
  for byte) and ``signature`` base64 Ed25519;
- ``checkpoints.jsonl`` — ``{size, root_hash, note}`` per stored checkpoint, ascending sizes, ``note``
  the C2SP signed note as issued;
- ``keys.json`` — ``{origin, keys: [{kid, verifier_key, first_seq, last_seq}]}``: which key signed
  which seq range (from the verified chain and its key events);
- ``anchors.jsonl`` — ``{size, chain_id, tx_hash, note_sha256, block_number, to}`` per on-chain anchor
  (:mod:`.anchor`);
- ``manifest.json`` — ``{format, origin, records, checkpoints, files: {name: sha256 hex}}``.

The manifest's digests catch accidental damage; they prove nothing against an attacker, who can
recompute them — integrity comes from the signatures and checkpoints the audit checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from .anchor import stored_anchors
from .audit import StoredCheckpoint
from .keys import Verifier, parse_verifier_key
from .verify import ChainVerifier

__all__ = ["BUNDLE_FORMAT", "DbSource", "BundleSource", "BundleRow", "export_bundle"]

BUNDLE_FORMAT = "auditinf-bundle/v1"
_FILES = ("records.jsonl", "checkpoints.jsonl", "keys.json")


class BundleError(InputError):
    """A bundle that cannot be read at all (missing file, not JSON, wrong format): exit code 2."""

    code = "invalid_bundle"


@dataclass(frozen=True)
class BundleRow:
    """A record as read from ``records.jsonl`` (same fields as a stored row)."""

    seq: Any
    leaf_hash: Any
    body: bytes
    signature: Any
    kid: Any


class DbSource:
    """A live ledger store as an audit source."""

    def __init__(self, ledger) -> None:  # noqa: ANN001 - Ledger (import cycle)
        self.ledger = ledger
        self.description = f"database {ledger.url.split('@')[-1]}"

    def rows(self) -> Iterator[Any]:
        return self.ledger.rows()

    def checkpoints(self) -> Iterator[StoredCheckpoint]:
        for row in self.ledger.checkpoints():
            yield StoredCheckpoint(row.size, row.note, row.root_hash)

    def count(self) -> int | None:
        return self.ledger.size()


class BundleSource:
    """An exported bundle directory as an audit source; raises :class:`BundleError` when unreadable."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = f"bundle {directory}"
        try:
            self.manifest = json.loads((directory / "manifest.json").read_text())
            keys = json.loads((directory / "keys.json").read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"{directory} is not an audit bundle: {type(exc).__name__}") from exc
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{directory}: manifest format is not {BUNDLE_FORMAT}")
        for name in _FILES:
            if not (directory / name).is_file():
                raise BundleError(f"{directory}: {name} is missing")
        self.origin = self.manifest.get("origin")
        self.key_list = keys.get("keys", []) if isinstance(keys, dict) else []

    def first_key(self) -> Verifier:
        """The key the bundle says signed seq 0 (trust on first use when the auditor gave none)."""
        if not self.key_list:
            raise BundleError("keys.json lists no key")
        return parse_verifier_key(self.key_list[0]["verifier_key"])

    def _lines(self, name: str) -> Iterator[tuple[int, dict]]:
        with (self.directory / name).open("rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    item = json.loads(line)
                except ValueError as exc:
                    raise BundleError(f"{name} line {number} is not JSON") from exc
                if not isinstance(item, dict):
                    raise BundleError(f"{name} line {number} is not a JSON object")
                yield number, item

    def rows(self) -> Iterator[BundleRow]:
        for _number, item in self._lines("records.jsonl"):
            body = item.get("body")
            yield BundleRow(item.get("seq"), item.get("leaf_hash"),
                            body.encode("utf-8", "surrogatepass") if isinstance(body, str) else b"",
                            item.get("signature"), item.get("kid"))

    def checkpoints(self) -> Iterator[StoredCheckpoint]:
        for number, item in self._lines("checkpoints.jsonl"):
            if not isinstance(item.get("note"), str) or not isinstance(item.get("size"), int):
                raise BundleError(f"checkpoints.jsonl line {number} lacks size or note")
            yield StoredCheckpoint(item["size"], item["note"], item.get("root_hash"))

    def count(self) -> int | None:
        records = self.manifest.get("records")
        return records if isinstance(records, int) else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_bundle(ledger, out: Path, trusted: dict[str, Verifier], origin: str) -> dict:  # noqa: ANN001 - Ledger
    """Write the bundle of ``ledger`` to ``out`` (created; must be empty or absent). The records are
    verified while they are written (key ranges come from the verified chain), so a ledger that
    does not verify is not exported: raises :class:`~auditinf.errors.VerificationError`. Returns
    the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise BundleError(f"{out} is not empty")
    chain = ChainVerifier(trusted)
    with (out / "records.jsonl").open("w", encoding="utf-8") as f:
        for row in ledger.rows():
            chain.feed(row)
            f.write(json.dumps({"seq": row.seq, "leaf_hash": row.leaf_hash, "kid": row.kid,
                                "signature": row.signature, "body": bytes(row.body).decode("utf-8")},
                               ensure_ascii=False) + "\n")
    checkpoints = 0
    with (out / "checkpoints.jsonl").open("w", encoding="utf-8") as f:
        for row in ledger.checkpoints():
            if row.size > chain.size:
                break  # issued after the records were read
            f.write(json.dumps({"size": row.size, "root_hash": row.root_hash, "note": row.note}) + "\n")
            checkpoints += 1
    (out / "keys.json").write_text(json.dumps({"origin": origin, "keys": [s.to_dict() for s in chain.key_spans()]},
                                              indent=2) + "\n")
    anchors = [a for a in stored_anchors(DbSource(ledger)) if a["size"] <= chain.size]
    (out / "anchors.jsonl").write_text("".join(json.dumps(a) + "\n" for a in anchors))
    manifest = {"format": BUNDLE_FORMAT, "origin": origin, "records": chain.size, "checkpoints": checkpoints,
                "anchors": len(anchors),
                "files": {name: _sha256(out / name) for name in (*_FILES, "anchors.jsonl")}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
