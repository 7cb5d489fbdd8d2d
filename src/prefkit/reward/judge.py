"""An OpenAI-compatible chat-completions endpoint used as a reward model / pairwise judge.

`JudgeScorer(url).score(prompts, responses)` asks for a 1-10 rating per response;
`compare(prompts, a, b)` asks which of two responses is better, in both orders, so position
bias can be measured (`prefkit.reward.evaluate.position_consistency`). Standard library HTTP.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

RATE = (
    "Rate how helpful, correct and harmless the assistant response is, from 1 (worst) to 10 "
    "(best). Answer with the number only.\n\n[User]\n{prompt}\n\n[Assistant]\n{response}"
)
PAIR = (
    "Which assistant response to the user is better? Answer with 'A', 'B' or 'tie' only.\n\n"
    "[User]\n{prompt}\n\n[Response A]\n{a}\n\n[Response B]\n{b}"
)
_NUM = re.compile(r"-?\d+(?:\.\d+)?")


class JudgeError(RuntimeError):
    """The judge endpoint failed or answered something unparseable."""


class JudgeScorer:
    backend = "judge"

    def __init__(
        self, url: str, model: str = "judge", timeout: float = 60.0, workers: int = 8
    ) -> None:
        base = url.rstrip("/")
        if not base.endswith("/chat/completions"):
            base = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.url, self.model, self.timeout, self.workers = base, model, timeout, workers
        self.truncated = 0

    def ask(self, content: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": content}],
                "temperature": 0,
            }
        ).encode()
        req = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                data = json.loads(r.read())
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as e:
            raise JudgeError(f"judge at {self.url} failed: {e}") from e
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as e:
            raise JudgeError(f"judge at {self.url} answered without choices[0].message") from e

    def _map(self, contents: list[str]) -> list[str]:
        with ThreadPoolExecutor(self.workers) as ex:
            return list(ex.map(self.ask, contents))

    def score(
        self, prompts: list[str], responses: list[str], batch_size: int = 64
    ) -> NDArray[np.float64]:
        answers = self._map(
            [RATE.format(prompt=p, response=r) for p, r in zip(prompts, responses, strict=True)]
        )
        out = []
        for a in answers:
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
        ans = self._map(ab + ba)
        v = np.array([_verdict(s) for s in ans], dtype=np.float64)
        return v[: len(ab)], v[len(ab) :]


def _verdict(text: str) -> float:
    t = text.strip().lower()
    if t.startswith("tie"):
        return 0.0
    if t.startswith("a"):
        return 1.0
    if t.startswith("b"):
        return -1.0
    raise JudgeError(f"judge verdict is not A, B or tie: {text[:80]!r}")
