"""HTTP API."""

from .app import build_service, create_app

__all__ = ["build_service", "create_app"]
