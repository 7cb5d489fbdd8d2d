"""Saved reward-model directories: `model.json` card + weights; loading checks version/backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import prefkit

CARD = "model.json"
FORMAT = "prefkit-reward-model"
FORMAT_VERSION = 1
BACKENDS = ("features", "embed", "trl")


class ModelDirError(ValueError):
    """A model directory that cannot be used (missing, other version, other backend)."""


def write_card(out: Path, card: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "prefkit_version": prefkit.__version__,
        **card,
    }
    p = out / CARD
    p.write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str) + "\n")
    return p


def _minor(v: str) -> tuple[str, ...]:
    return tuple(v.split(".")[:2])


def read_card(path: Path, backend: str | None = None) -> dict[str, Any]:
    """Read and check `model.json`: same card format, same prefkit major.minor, known backend."""
    p = path / CARD
    if not path.is_dir() or not p.exists():
        raise ModelDirError(f"{path}: not a reward model directory (no {CARD})")
    try:
        card: dict[str, Any] = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ModelDirError(f"{p}: unreadable model card ({e})") from e
    if card.get("format") != FORMAT:
        raise ModelDirError(f"{p}: not a prefkit reward model card (format {card.get('format')!r})")
    ver = str(card.get("prefkit_version", "?"))
    if card.get("format_version") != FORMAT_VERSION or _minor(ver) != _minor(prefkit.__version__):
        raise ModelDirError(
            f"{path}: model was saved by prefkit {ver} (card format "
            f"{card.get('format_version')}); this is prefkit {prefkit.__version__} (card format "
            f"{FORMAT_VERSION}). Retrain it with `prefkit rm train`, or use prefkit {ver}"
        )
    b = card.get("backend")
    if b not in BACKENDS:
        raise ModelDirError(f"{path}: unknown backend {b!r}; known: {', '.join(BACKENDS)}")
    if backend is not None and b != backend:
        raise ModelDirError(f"{path}: model backend is {b!r}, expected {backend!r}")
    return card
