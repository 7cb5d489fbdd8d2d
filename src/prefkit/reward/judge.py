"""An OpenAI-compatible chat-completions endpoint used as a reward model / pairwise judge.

`JudgeScorer(url).score(prompts, responses)` asks for a 1-10 rating per response;
`compare(prompts, a, b)` asks which of two responses is better, in both orders, so position
bias can be measured (`prefkit.reward.evaluate.position_consistency`). The requests go
through the judge stage's client (`prefkit.judge.client`: concurrency, retries honouring
Retry-After, optional cache) and its verdict parser; see docs/judge.md for full judging.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.judge.client import Call, Client, Endpoint, JudgeError, Result
from prefkit.judge.parse import parse_pairwise, parse_scores

__all__ = ["PAIR", "RATE", "JudgeError", "JudgeScorer"]

RATE = (
    "Rate how helpful, correct and harmless the assistant response is, from 1 (worst) to 10 "
    "(best). Answer with the number only.\n\n[User]\n{prompt}\n\n[Assistant]\n{response}"
)
PAIR = (
    "Which assistant response to the user is better? Answer with 'A', 'B' or 'tie' only.\n\n"
    "[User]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}"
)
_NUM = re.compile(r"-?\d+(?:\.\d+)?")


class JudgeScorer:
    backend = "judge"

    def __init__(
        self,
        url: str,
        model: str = "judge",
        timeout: float = 60.0,
        workers: int = 8,
        cache: Any = None,
    ) -> None:
        self.endpoint = Endpoint(url, model)
        self.url, self.model = self.endpoint.chat_url, model
        self.client = Client(cache=cache, concurrency=workers, timeout=timeout)
        self.truncated = 0

    def _ask(self, contents: list[str]) -> list[str]:
        run = self.client.run([Call(self.endpoint, (("user", c),)) for c in contents])
        out = []
        for r in run.results:
            if not isinstance(r, Result):
                reason = getattr(r, "reason", "no answer")
                raise JudgeError(f"judge at {self.url} failed: {reason}")
            out.append(r.content)
        return out

    def score(
        self, prompts: list[str], responses: list[str], batch_size: int = 64
    ) -> NDArray[np.float64]:
        answers = self._ask(
            [RATE.format(prompt=p, response=r) for p, r in zip(prompts, responses, strict=True)]
        )
        out = []
        for a in answers:
            got = parse_scores(a, ["rating"], 1.0, 10.0)
            if "rating" in got:
                out.append(got["rating"])
                continue
            m = _NUM.search(a)
            if m is None:
                raise JudgeError(f"judge answer has no rating: {a[:80]!r}")
            out.append(float(m.group()))
        return np.array(out, dtype=np.float64)

    def compare(
        self, prompts: list[str], a: list[str], b: list[str]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Verdicts as +1 (first shown wins), -1, 0 (tie) for order (a, b) and order (b, a)."""
        ab = [PAIR.format(prompt=p, a=x, b=y) for p, x, y in zip(prompts, a, b, strict=True)]
        ba = [PAIR.format(prompt=p, a=y, b=x) for p, x, y in zip(prompts, a, b, strict=True)]
        ans = self._ask(ab + ba)
        v = np.array([_verdict(s) for s in ans], dtype=np.float64)
        return v[: len(ab)], v[len(ab) :]


def _verdict(text: str) -> float:
    v = parse_pairwise(text)
    if v is None:
        raise JudgeError(f"judge verdict is not A, B or tie: {text[:80]!r}")
    return {"first": 1.0, "second": -1.0}.get(v.winner, 0.0)
