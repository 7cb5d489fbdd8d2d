"""A small campaign to try the app (`prefkit serve --demo`): simulated arena pairs when
`prefkit.simulate` is installed, else a built-in set."""

from __future__ import annotations

import importlib.util
from typing import Any

import pyarrow as pa

from prefkit.schema import Kind

GUIDELINES = """# How to judge

Read the prompt, then both answers. Pick the **better** answer (`1` left, `2` right),
`3` when they are equally good, `4` when **both are bad**. Say how much better, and why
if you can. Press `Enter` to submit, `Backspace` to go back.
"""

_BUILTIN: list[tuple[str, str, str, str, str]] = [
    ("What is 2 + 2?", "4", "2 + 2 = 5", "model-x", "model-y"),
    ("Name a prime number above 10.", "11 is prime.", "12", "model-y", "model-z"),
    (
        "Write a Python function that reverses a string.",
        "```python\ndef rev(s: str) -> str:\n    return s[::-1]\n```",
        "Use a loop.",
        "model-x",
        "model-z",
    ),
    ("Capital of France?", "Paris.", "Lyon, I think.", "model-z", "model-x"),
    ("Translate 'merci' to English.", "Thank you.", "Thanks!", "model-y", "model-x"),
    ("Is the Earth flat?", "No, it is an oblate spheroid.", "Yes.", "model-x", "model-y"),
    ("Give a synonym of 'quick'.", "fast", "slow", "model-z", "model-y"),
    ("Summarise: 'The cat sat on the mat.'", "A cat sat on a mat.", "Dogs bark.", "model-y", "model-z"),
]  # fmt: skip


def demo_items(size: int = 40, seed: int = 0) -> pa.Table:
    """Pairs to judge (an items table, no outcomes shown): simulated arena pairs when the
    simulator is installed, else the built-in set."""
    from prefkit.serve.items import items_from_canonical, rows_to_items

    if importlib.util.find_spec("prefkit.simulate") is not None:
        try:
            from prefkit.simulate import simulate

            sim: Any = simulate("arena", size=size, seed=seed)
            table = sim.tables[Kind.COMPARISONS]
            if table.num_rows and "response_a" in table.column_names:
                items, _ = items_from_canonical(table.slice(0, size), "demo")
                if items.num_rows:
                    return items
        except Exception:  # noqa: BLE001 - fall back to the built-in pairs
            pass
    rows = [
        {"prompt": p, "response_a": a, "response_b": b, "model_a": ma, "model_b": mb,
         "meta": {"pair_id": f"demo-{i}"}}
        for i, (p, a, b, ma, mb) in enumerate(_BUILTIN)
    ]  # fmt: skip
    return rows_to_items(rows).table
