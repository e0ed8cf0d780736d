"""Helpers every ``auditinf`` sub-command shares: settings from flags, JSON output, error mapping.

Errors a user can cause print ``{"error": {"code", "message"}}`` on stdout and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from .config import Settings
from .errors import AuditinfError, InputError

__all__ = ["LedgerUrl", "KeyFile", "PolicyOpt", "settings_from", "emit", "fail", "cli_errors"]

LedgerUrl = Annotated[Optional[str], typer.Option("--ledger-url", help="SQLAlchemy URL (AUDITINF_LEDGER_URL)")]
KeyFile = Annotated[Optional[Path], typer.Option("--key-file", help="signing key (AUDITINF_KEY_FILE)")]
PolicyOpt = Annotated[Optional[Path], typer.Option("--policy", help="policy file (AUDITINF_POLICY)")]


def settings_from(**overrides: Any) -> Settings:
    """:class:`Settings` from the environment, with the flags that were given (not ``None``) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def emit(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def fail(exc: AuditinfError) -> None:
    """Print ``exc`` as ``{"error": …}`` and exit 2."""
    emit(exc.to_dict())
    raise typer.Exit(2)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Every failure a user can cause becomes ``{"error": …}`` on stdout and exit code 2."""
    try:
        yield
    except AuditinfError as exc:
        fail(exc)
    except (OSError, UnicodeError) as exc:
        fail(InputError(f"cannot read input: {type(exc).__name__}: {getattr(exc, 'strerror', '') or ''}".rstrip(": "),
                        code="invalid_request"))


@contextmanager
def open_service(settings: Settings) -> Iterator[Any]:
    """The :class:`~auditinf.service.Service` for one command. Its ledger is closed on the way
    out, which signs a checkpoint covering the command's record (issue 3: a checkpoint at
    shutdown) and stops the ledger's writer."""
    from .api.app import build_service

    service = build_service(settings)
    try:
        yield service
    finally:
        service.ledger.close()

