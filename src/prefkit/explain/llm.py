"""The parts of explain that ask an LLM: naming learned directions and proposing / testing
principles. Every call goes through the judge stage's client (`prefkit.judge.client`:
concurrency, retries, Retry-After) with its content-hash cache, so a re-run pays nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from prefkit.explain.data import Votes
from prefkit.explain.principles import (
    dedupe,
    parse_proposals,
    propose_messages,
    read_principles,
    score,
    select,
    test,
)

__all__ = ["ask_fn", "name_directions", "principles_part", "read_principles"]

Messages = tuple[tuple[str, str], ...]

NAME_PROMPT = """Below are pairs of AI assistant responses. In each pair, the first response \
has MORE of one hidden property than the second. Words typical of the "more" side: {high}. \
Words typical of the "less" side: {low}.

{examples}

Name the property in at most six words (for example "gives step-by-step lists" or "refuses \
the request"). Answer with the name only."""


class LLMError(RuntimeError):
    """The endpoint could not be used (its message is one line for the user)."""


def ask_fn(
    spec: Any, status: Callable[[str, int], Callable[[int], None]], what: str
) -> Callable[[list[Messages]], list[str | None]]:
    """A function that answers a list of chat requests through the cached judge client."""
    from prefkit.judge.cache import Cache
    from prefkit.judge.client import Budget, Call, Client, Endpoint, JudgeError, Stats

    ep = Endpoint(spec.endpoint, spec.model, spec.api_key_env)

    def ask(msgs: list[Messages]) -> list[str | None]:
        tick = status(what, len(msgs))
        done = [0]

        def progress(st: Stats) -> None:
            now = st.cached + st.made + st.failed
            if now > done[0]:
                tick(now - done[0])
                done[0] = now

        try:
            cache = Cache(spec.cache_dir)
        except (OSError, NotADirectoryError) as e:
            raise LLMError(f"judge cache {spec.cache_dir}: {e}") from None
        client = Client(
            cache=cache, concurrency=spec.concurrency, budget=Budget(spec.max_calls, None),
            progress=progress,
        )  # fmt: skip
        try:
            run = client.run([Call(ep, m) for m in msgs])
        except JudgeError as e:
            raise LLMError(f"{what}: {e}") from None
        finally:
            cache.close()
        out: list[str | None] = []
        for r in run.results:
            out.append(getattr(r, "content", None))
        return out

    return ask


def name_directions(
    ask: Callable[[list[Messages]], list[str | None]],
    words_high: list[list[str]],
    words_low: list[list[str]],
    examples: list[list[dict[str, Any]]],
) -> list[str | None]:
    """A short judge-written name per direction (None when the answer is empty)."""
    msgs: list[Messages] = []
    for hi, lo, ex in zip(words_high, words_low, examples, strict=True):
        blocks = []
        for i, e in enumerate(ex[:3], start=1):
            blocks.append(f"Pair {i}\n[more]\n{e['high'][:800]}\n[less]\n{e['low'][:800]}")
        msgs.append(
            (
                (
                    "user",
                    NAME_PROMPT.format(
                        high=", ".join(hi[:8]) or "-", low=", ".join(lo[:8]) or "-",
                        examples="\n\n".join(blocks),
                    ),
                ),
            )
        )  # fmt: skip
    answers = ask(msgs)
    names: list[str | None] = []
    for a in answers:
        s = (a or "").strip().splitlines()[0].strip().strip('"').strip("'").strip() if a else ""
        names.append(s[:80] or None)
    return names


def principles_part(
    v: Votes, opts: Any, status: Callable[[str, int], Callable[[int], None]], notes: list[str]
) -> dict[str, Any]:
    """Propose (optional) and test principles on every vote, score them and pick the set."""
    spec = opts.judge
    prompts, a, b = v.prompt.to_pylist(), v.a.to_pylist(), v.b.to_pylist()
    outcome = np.where(v.y[:, 0] > 0, 0, np.where(v.y[:, 1] > 0, 1, 2)).astype(np.int64)
    candidates: list[str] = list(opts.principles or [])
    info: dict[str, Any] = {"endpoint_model": spec.model, "given": len(candidates)}
    if opts.propose > 0:
        rng = np.random.default_rng([opts.effects.seed, 24])
        dec = np.flatnonzero(outcome < 2)
        n_sample = int(min(dec.size, max(20, 4 * opts.propose)))
        pick = np.sort(rng.choice(dec, size=n_sample, replace=False)) if n_sample else dec
        msgs = [
            propose_messages(prompts[i], a[i], b[i], "A" if outcome[i] == 0 else "B", 3)
            for i in pick.tolist()
        ]
        answers = ask_fn(spec, status, "proposing principles")(msgs)
        props = [p for ans in answers for p in parse_proposals(ans)]
        embed = _embedder()
        if embed is None:
            notes.append(
                "principles: near-duplicate proposals not merged (needs the [train] extra)"
            )
        kept, dd = dedupe(props, opts.propose, embed)
        info["proposal"] = dd | {"pairs_sampled": int(pick.size), "kept": kept}
        for p in kept:
            if p not in candidates:
                candidates.append(p)
    if not candidates:
        why = "principles: no candidate principle (the file is empty or nothing was proposed)"
        notes.append(why)
        return info | {"skipped": why}
    ask = ask_fn(spec, status, f"testing {len(candidates)} principles on {v.n} votes")
    t = test(candidates, prompts, a, b, ask)
    rows = score(t, outcome, opts.effects.level)
    chosen = select(t, rows, outcome, opts.effects.level)
    rows.sort(key=lambda r: (-r["net"], r["principle"]))
    return info | {
        "candidates": len(candidates),
        "calls": 2 * len(candidates) * v.n,
        "rows": rows,
        "set": chosen,
        "method": "both orders; a principle votes only when the orders agree; Wilson "
        f"{opts.effects.level:.0%} intervals; greedy smallest set (Findeis et al., ICAI)",
    }


def _embedder() -> Callable[[list[str]], Any] | None:
    try:
        from prefkit.reward.embed import embed_texts, model_path

        model_path()
    except ImportError:
        return None
    return lambda texts: embed_texts(texts)
