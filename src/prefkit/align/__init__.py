"""Learn a policy from preferences: the DPO family as one registry of tested losses
(`prefkit.align.losses.LOSSES`), prefix-shared batching of responses that share a prompt
(`prefkit.align.batching`), TRL trainer glue (`prefkit.align.train`) and evaluation
(`prefkit.align.evaluate`). See docs/align.md.

Heavy dependencies (torch, transformers, trl) load only when a submodule is imported.
"""

from __future__ import annotations

__all__ = ["batching", "data", "evaluate", "losses", "train"]
