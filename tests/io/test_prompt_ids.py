"""`prompt_ids` (the readers' vectorised `schema.prompt_id`) gives `schema.prompt_id` of every
prompt, on both of its ways: one message of one plain role per prompt (hashed from a state
copied after the key's head) and any other prompts (keys built message by message)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from prefkit.io.readers._arrow import ints, prompt_ids, texts
from prefkit.io.readers._fast import plain_prompt_ids
from prefkit.schema import MESSAGES, prompt_id

TRICKY = [
    "What is 2+2?",
    'say "hi"',
    "back\\slash",
    "  padded  ",
    "tab\tand  runs\nof   space",
    "UPPER lower MiXeD",
    "café naïve 東京",
    "",
    " ",
    '\\"both\\"',
    "ﬁ ligature",  # NFKC changes it
]


def _random_texts(rng: random.Random, n: int) -> list[str]:
    alphabet = list('ab CD"\\\t\n  éÅ東') + ["  ", "x"]
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(n)]


def test_one_user_message_per_prompt() -> None:
    values = TRICKY + _random_texts(random.Random(3), 300)
    got = plain_prompt_ids(texts(values)).to_pylist()
    assert got == [prompt_id(v) for v in values]
    with_nulls = pa.array(values + [None], pa.string())  # null: the empty prompt
    assert plain_prompt_ids(with_nulls).to_pylist() == [prompt_id(v) for v in values] + [
        prompt_id(None)
    ]


def _ids(roles: list[str], contents: list[str], lengths: list[int]) -> list[str]:
    offsets = ints(np.concatenate([[0], np.cumsum(lengths)]))
    structs = pa.StructArray.from_arrays([texts(roles), texts(contents)], ["role", "content"])
    prompts = pa.ListArray.from_arrays(offsets, structs).cast(MESSAGES)
    return prompt_ids(texts(roles), texts(contents), offsets, prompts).to_pylist()


def test_other_roles_and_several_messages() -> None:
    rng = random.Random(5)
    contents = TRICKY + _random_texts(rng, 100)
    n = len(contents)
    for role in ("system", 'a "quoted" role', "back\\slash", "rôle", "r\x01"):
        want = [prompt_id([{"role": role, "content": c}]) for c in contents]
        assert _ids([role] * n, contents, [1] * n) == want, role
    mixed = [rng.choice(["user", "assistant"]) for _ in range(n)]
    assert _ids(mixed, contents, [1] * n) == [
        prompt_id([{"role": r, "content": c}]) for r, c in zip(mixed, contents, strict=True)
    ]
    lengths = [2] * (n // 2)
    roles = ["user", "assistant"] * (n // 2)
    got = _ids(roles, contents[: 2 * (n // 2)], lengths)
    want = [
        prompt_id(
            [
                {"role": "user", "content": contents[2 * i]},
                {"role": "assistant", "content": contents[2 * i + 1]},
            ]
        )
        for i in range(n // 2)
    ]
    assert got == want


def test_same_role_spelled_alike_is_not_one_role() -> None:
    """Roles whose bytes repeat with another period ("ab" "ab" ... vs "a" "ba" ...) are not
    taken for one role."""
    contents = ["x", "y", "z", "w"]
    roles = ["ab", "ab", "a", "bab"]
    assert _ids(roles, contents, [1, 1, 1, 1]) == [
        prompt_id([{"role": r, "content": c}]) for r, c in zip(roles, contents, strict=True)
    ]
