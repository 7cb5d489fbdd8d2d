"""Importing this package registers every reader, most specific first (detection order)."""

from __future__ import annotations

import prefkit.io.canonical  # noqa: F401
