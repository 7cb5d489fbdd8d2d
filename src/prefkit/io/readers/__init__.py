"""Importing this package registers every reader, most specific first (detection order)."""

from __future__ import annotations

import prefkit.io.canonical
import prefkit.io.readers.battles
import prefkit.io.readers.feedback
import prefkit.io.readers.finegrained
import prefkit.io.readers.generic
import prefkit.io.readers.hh
import prefkit.io.readers.icai
import prefkit.io.readers.llmbar
import prefkit.io.readers.pandalm
import prefkit.io.readers.rankings
import prefkit.io.readers.trl  # noqa: F401
from prefkit.io.base import READERS

#: detection order: most specific first, the generic column-map reader last
ORDER = (
    "canonical",
    "canonical-rows",
    "finegrained-rlhf",
    "pandalm",
    "pandalm-judge",
    "annotated-pairs",
    "icai",
    "llmbar",
    "oasst",
    "nectar",
    "pku-saferlhf",
    "ultrafeedback",
    "helpsteer-preference",
    "helpsteer2",
    "shp",
    "openai",
    "openai-chat",
    "arena-55k",
    "arena",
    "llmfao",
    "prefkit-pairs",
    "hh-rlhf",
    "trl-stepwise",
    "trl-unpaired",
    "trl",
    "generic",
)


def _reorder() -> None:
    known = {n: READERS[n] for n in ORDER if n in READERS}
    rest = {n: r for n, r in READERS.items() if n not in known and n != "generic"}
    READERS.clear()
    READERS.update({k: v for k, v in known.items() if k != "generic"})
    READERS.update(rest)
    READERS["generic"] = known["generic"]


_reorder()
