"""`prefkit serve`: a web app where annotators give pairwise feedback (FastAPI + SQLAlchemy).

`create_app(settings)` builds the app; see docs/serve.md.
"""

from __future__ import annotations

from prefkit.serve.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from prefkit.serve.app import create_app

        return create_app
    raise AttributeError(name)
