"""A real OpenAI-compatible chat-completions server with scripted judge behaviours, run with
uvicorn on loopback by the tests and by benchmarks/bench_judge.py:

    python -m tests.judge.fake_openai --port 8123 [--delay 0.2] [--log calls.log]
        [--api-key KEY] [--crash-after N] [--slow-first 2.0]

The behaviour is chosen by the request's `model`:

- `always-first`: the response shown first always wins (pure position bias);
- `longer`: the longer response wins, clearly so when it is 1.5x longer; equal -> tie;
- `fair`: `longer`, but answering in the format of whichever template it was given
  (Arena-Hard grades, MT-Bench `[[A]]`, AlpacaEval `Output (a)`), with token logprobs when
  asked for them;
- `malformed`: like `longer`, but a third of the first answers carry no verdict (fixed by
  the reminder) and a sixth never do;
- `ratelimited`: the first attempt of every distinct request gets 429 + `Retry-After`;
- `flaky`: the first attempt of every distinct request gets HTTP 500;
- `slow`: the first attempt of every distinct request takes `--slow-first` seconds;
- `empty`: every answer has empty content;
- `rater`: rubric answers (`aspect: n` lines, n from the response length).
Any other model -> HTTP 404 `model_not_found`. With `--api-key`, a missing or wrong
`Authorization: Bearer` -> 401. `--crash-after N` kills the process (os._exit) when the N-th
request arrives, before answering it. `--log FILE` appends one line per request: the SHA-256
of the request's messages and model, the attempt number, the temperature, max_tokens and
whether logprobs were asked for. With `max_tokens`, answers are cut to 4 characters a token
(finish_reason `length`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
from collections import Counter
from typing import Any

STATE: dict[str, Any] = {"n": 0, "attempts": Counter(), "log": None, "args": None}

_A = re.compile(
    r"(?:Assistant A's answer\]\n(.*?)\n\[The end of Assistant A's answer\]"
    r"|# Output \(a\)\n(.*?)\n\n# Output \(b\))",
    re.S | re.I,
)
_B = re.compile(
    r"(?:Assistant B's answer\]\n(.*?)\n\[The end of Assistant B's answer\]"
    r"|# Output \(b\)\n(.*?)\n\n# Which is better)",
    re.S | re.I,
)
_RESP = re.compile(r"\[Response\]\n(.*?)\n\nGive one line", re.S)


def _texts(prompt: str) -> tuple[str, str]:
    a, b = _A.search(prompt), _B.search(prompt)
    if not a or not b:
        return "", ""
    return (a.group(1) or a.group(2) or ""), (b.group(1) or b.group(2) or "")


def _verdict(prompt: str, first_wins: bool | None, clear: bool) -> tuple[str, str]:
    """(answer text, verdict letter) in the format the prompt asks for."""
    if "[[A>>B]]" in prompt:
        if first_wins is None:
            return "They are about equally good. [[A=B]]", "A"
        op = ">>" if clear else ">"
        return ("A" if first_wins else "B") + " is better. " + (
            f"[[A{op}B]]" if first_wins else f"[[B{op}A]]"
        ), ("A" if first_wins else "B")
    if "Output (a)" in prompt:
        return ("Output (a)" if first_wins is not False else "Output (b)"), (
            "a" if first_wins is not False else "b"
        )
    if first_wins is None:
        return "Both are equally good. [[C]]", "C"
    return ("Assistant A is better. [[A]]" if first_wins else "Assistant B is better. [[B]]"), (
        "A" if first_wins else "B"
    )


def _longer(prompt: str) -> tuple[bool | None, bool]:
    a, b = _texts(prompt)
    if len(a) == len(b):
        return None, False
    first = len(a) > len(b)
    big, small = max(len(a), len(b)), max(1, min(len(a), len(b)))
    return first, big >= 1.5 * small


def _logprobs(answer: str, letter: str, first_wins: bool | None) -> dict[str, Any]:
    """Tokens of the answer, one per character; at the verdict letter, top_logprobs with
    P(A) = 0.8 when the first wins (0.2 otherwise)."""
    import math

    pos = answer.rfind(letter)
    out = []
    for i, ch in enumerate(answer):
        if i == pos and letter in "AB":
            pa = 0.8 if first_wins else 0.2
            top = [
                {"token": "A", "logprob": math.log(pa)},
                {"token": "B", "logprob": math.log(1 - pa)},
            ]
            lp = math.log(pa if letter == "A" else 1 - pa)
            out.append({"token": ch, "logprob": lp, "top_logprobs": top})
        else:
            out.append({"token": ch, "logprob": 0.0, "top_logprobs": []})
    return {"content": out}


def answer(
    model: str,
    messages: list[dict[str, str]],
    want_lp: bool,
    attempt: int,
    max_tokens: int | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    prompt = "\n".join(m.get("content", "") for m in messages)
    last = messages[-1].get("content", "") if messages else ""
    asked_again = len(messages) >= 3 and messages[-2].get("role") == "assistant"
    args = STATE["args"]
    lp = None
    if model == "always-first":
        text, letter = _verdict(prompt, True, True)
        if want_lp:
            lp = _logprobs(text, letter, True)
    elif model in ("longer", "fair", "ratelimited", "flaky", "slow", "malformed"):
        if model == "ratelimited" and attempt == 1:
            return (
                429,
                {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                {"Retry-After": str(args.retry_after)},
            )
        if model == "flaky" and attempt == 1:
            return 500, {"error": {"message": "internal error"}}, {}
        first, clear = _longer(prompt)
        text, letter = _verdict(prompt, first, clear)
        if model == "malformed":
            h = int(
                hashlib.sha256(
                    messages[-1 if not asked_again else -3]["content"].encode()
                ).hexdigest(),
                16,
            )
            if (h % 6 == 0) or (h % 3 == 0 and not asked_again):
                text = "Both answers have merits; it is hard to say which one is better."
        if want_lp and model == "fair":
            lp = _logprobs(text, letter, first)
    elif model == "empty":
        text = ""
    elif model == "rater":
        m = _RESP.search(prompt)
        n = len(m.group(1)) if m else 0
        score = max(1, min(5, 1 + n // 40))
        aspects = re.findall(r"^(\w+): <rating>$", last if not asked_again else prompt, re.M)
        text = "Rationale: fine.\n" + "\n".join(f"{a}: {score}" for a in dict.fromkeys(aspects))
    else:
        return (
            404,
            {
                "error": {
                    "message": f"The model `{model}` does not exist.",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            {},
        )
    finish = "stop"
    if max_tokens is not None and len(text) > 4 * max_tokens:  # ~4 characters a token
        text, finish = text[: 4 * max_tokens], "length"
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish,
    }
    if lp is not None:
        choice["logprobs"] = lp
    body = {
        "id": "chatcmpl-fake", "object": "chat.completion", "model": model, "choices": [choice],
        "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": max(1, len(text) // 4),
                  "total_tokens": len(prompt) // 4 + max(1, len(text) // 4)},
    }  # fmt: skip
    return 200, body, {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    args = STATE["args"]
    path = scope["path"]
    if path == "/health":
        await _send(send, 200, {"ok": True}, {})
        return
    if path != "/v1/chat/completions" or scope["method"] != "POST":
        await _send(send, 404, {"error": {"message": f"no route {path}"}}, {})
        return
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    if args.api_key and headers.get("authorization") != f"Bearer {args.api_key}":
        await _send(
            send,
            401,
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}},
            {},
        )
        return
    req = json.loads(body)
    STATE["n"] += 1
    if args.crash_after and STATE["n"] >= args.crash_after:
        os._exit(3)
    key = hashlib.sha256(
        json.dumps([req.get("model"), req.get("messages")], sort_keys=True).encode()
    ).hexdigest()
    STATE["attempts"][key] += 1
    attempt = STATE["attempts"][key]
    if STATE["log"] is not None:
        STATE["log"].write(
            f"{key} {attempt} {req.get('temperature')} {req.get('max_tokens')} "
            f"{bool(req.get('logprobs'))}\n"
        )
        STATE["log"].flush()
    model = str(req.get("model"))
    if model == "slow" and attempt == 1:
        await asyncio.sleep(args.slow_first)
    if args.delay:
        await asyncio.sleep(args.delay)
    status, out, extra = answer(
        model, req.get("messages") or [], bool(req.get("logprobs")), attempt, req.get("max_tokens")
    )
    await _send(send, status, out, extra)


async def _send(send: Any, status: int, obj: Any, extra: dict[str, str]) -> None:
    data = json.dumps(obj).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": data})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--log", default=None)
    p.add_argument("--api-key", default=None)
    p.add_argument("--crash-after", type=int, default=0)
    p.add_argument("--slow-first", type=float, default=2.0)
    p.add_argument("--retry-after", type=float, default=0.3)
    args = p.parse_args(argv)
    STATE["args"] = args
    if args.log:
        STATE["log"] = open(args.log, "a", encoding="utf-8")  # noqa: SIM115
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                backlog=4096)  # fmt: skip


if __name__ == "__main__":
    main()
