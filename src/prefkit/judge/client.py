"""An asynchronous client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM, TGI,
Ollama, llama.cpp server), built for labelling many items and paying for each only once.

    from prefkit.judge.client import Call, Client, Endpoint
    from prefkit.judge.cache import Cache

    ep = Endpoint("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
    calls = [Call(ep, (("user", f"Is {n} prime? Answer yes or no."),)) for n in range(100)]
    res = Client(cache=Cache("judge-cache"), concurrency=32).run(calls)
    res.results[0].content, res.stats.made, res.stats.cached

- `concurrency` requests in flight at once (one `httpx.AsyncClient`, one event loop);
  identical requests in one run are sent once.
- Retries with exponential backoff and jitter on 408/409/429/5xx, timeouts and dropped
  connections; `Retry-After` / `retry-after-ms` are honoured and pause every worker, not
  only the one that was told to wait.
- Every answer goes into the `Cache` (SQLite, committed per answer) before it is used, so an
  interrupted run loses nothing it paid for.
- Errors that no retry fixes stop the run at once with one clear message (`JudgeError`):
  the endpoint is down, HTTP 401/403 (the key), 404 (the model or the URL). Per-item
  failures (HTTP 400/413/422, e.g. a prompt over the context length) are returned as
  `Failure`s; ten consecutive failures or empty answers with no success in between stop the
  run too (`JudgeError`), since the endpoint is then broken, not the items.
- Budget guards (`Budget.max_calls`, `Budget.max_cost`) stop dispatching before the limit
  would be crossed; what was not sent is reported (`BudgetExhausted`).
- The API key is read from the environment variable `Endpoint.api_key_env` at call time
  and never logged or stored.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = tuple[str, str]  # (role, content)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
FATAL_STATUS = frozenset({401, 403, 404, 405})
BREAKER = 10  # consecutive failures / empty answers with no success in between -> stop


class JudgeError(RuntimeError):
    """The endpoint cannot be used (down, wrong key, wrong model, broken): stop the run.

    `results` holds whatever was answered before the stop (aligned with the calls; None for
    calls without an answer); every answer is also in the cache."""

    def __init__(
        self,
        message: str,
        results: list[Result | None] | None = None,
        stats: Stats | None = None,
    ) -> None:
        super().__init__(message)
        self.results: list[Result | None] = results or []
        self.stats = stats


class BudgetExhausted(JudgeError):
    """`--max-calls` / `--max-cost` reached: the calls not sent have no result."""


@dataclass(frozen=True)
class Endpoint:
    """Where and whom to ask. `url` is a base URL (`http://host:8000/v1`, `.../v1/`) or the
    full `.../chat/completions` URL. Prices are USD per million tokens."""

    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    price_in: float = 0.0
    price_out: float = 0.0

    @property
    def chat_url(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if base.endswith("/v1") or base.endswith("/openai"):
            return base + "/chat/completions"
        return base + "/v1/chat/completions"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.price_in + tokens_out * self.price_out) / 1e6


@dataclass(frozen=True)
class Call:
    """One chat-completions request."""

    endpoint: Endpoint
    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    logprobs: bool = False

    def key(self) -> str:
        """Content hash: model, messages and sampling parameters (not the URL or the key)."""
        blob = json.dumps(
            [self.endpoint.model, list(self.messages), self.temperature, self.max_tokens,
             self.logprobs],
            ensure_ascii=False, separators=(",", ":"),
        )  # fmt: skip
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def body(self, logprobs: bool) -> dict[str, Any]:
        b: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [{"role": r, "content": c} for r, c in self.messages],
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            b["max_tokens"] = self.max_tokens
        if logprobs:
            b["logprobs"] = True
            b["top_logprobs"] = 5
        return b


@dataclass(frozen=True)
class Result:
    """An answer (from the endpoint or the cache). `logprobs`: per generated token
    `{"token", "logprob", "top": [[token, logprob], ...]}`, or None when not returned."""

    content: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str | None
    logprobs: list[dict[str, Any]] | None
    cached: bool
    cost: float

    def record(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_s": round(self.latency_s, 6),
            "finish_reason": self.finish_reason,
            "logprobs": self.logprobs,
        }

    @staticmethod
    def from_record(rec: dict[str, Any], ep: Endpoint, cached: bool) -> Result:
        ti, to = int(rec.get("tokens_in") or 0), int(rec.get("tokens_out") or 0)
        return Result(
            content=str(rec.get("content") or ""),
            tokens_in=ti,
            tokens_out=to,
            latency_s=float(rec.get("latency_s") or 0.0),
            finish_reason=rec.get("finish_reason"),
            logprobs=rec.get("logprobs"),
            cached=cached,
            cost=ep.cost(ti, to),
        )


@dataclass(frozen=True)
class Failure:
    """A call that got no usable answer (HTTP 400/413/422, or retries exhausted)."""

    reason: str
    status: int | None = None


@dataclass
class Budget:
    max_calls: int | None = None
    max_cost: float | None = None


@dataclass
class Stats:
    total: int = 0  # calls asked for
    unique: int = 0  # distinct requests
    cached: int = 0  # answered from the cache
    made: int = 0  # requests sent that got an answer (paid)
    failed: int = 0
    retries: int = 0  # extra HTTP attempts (429, 5xx, timeouts, dropped connections)
    waited_s: float = 0.0  # time spent waiting for Retry-After / backoff
    skipped: int = 0  # not sent: budget reached or run stopped
    empty: int = 0  # answers with no text
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0  # of the answers paid in this run (cached ones cost nothing)
    elapsed_s: float = 0.0
    logprobs_refused: bool = False


@dataclass
class Run:
    results: list[Result | Failure | None]  # aligned with the calls; None = not sent
    stats: Stats = field(default_factory=Stats)


Progress = Callable[[Stats], None]


class _Fatal(Exception):
    pass


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason, self.wait, self.status = reason, wait, status


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:300]
        if isinstance(data.get("detail"), str):
            return str(data["detail"])[:300]
        return str(err)[:300]
    return str(data)[:300]


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("content"), list):
        return None
    out = []
    for t in lp["content"]:
        if not isinstance(t, dict) or "token" not in t:
            continue
        top = [
            [str(x.get("token")), float(x.get("logprob", -1e9))]
            for x in (t.get("top_logprobs") or [])
            if isinstance(x, dict)
        ]
        out.append({"token": str(t["token"]), "logprob": float(t.get("logprob", 0.0)), "top": top})
    return out or None


class Client:
    """Sends `Call`s with `concurrency` requests in flight; see the module docstring."""

    def __init__(
        self,
        cache: Any = None,
        concurrency: int = 8,
        retries: int = 5,
        timeout: float = 120.0,
        budget: Budget | None = None,
        progress: Progress | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 600.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.cache = cache
        self.concurrency = concurrency
        self.retries = retries
        self.timeout = timeout
        self.budget = budget or Budget()
        self.progress = progress
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._rng = random.Random()
        self._no_logprobs: set[str] = set()  # endpoints that refused logprobs
        # spent by earlier `run`s of this client: the budget covers every run together
        self._spent_calls = 0
        self._spent_cost = 0.0

    # -- public ---------------------------------------------------------------------------
    def run(self, calls: Sequence[Call]) -> Run:
        """Answer every call (cache first). Raises `JudgeError` / `BudgetExhausted` with the
        partial results attached."""
        return asyncio.run(self.arun(calls))

    async def arun(self, calls: Sequence[Call]) -> Run:
        t0 = time.perf_counter()
        stats = Stats(total=len(calls))
        keys = [c.key() for c in calls]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        stats.unique = len(first)
        answers: dict[str, Result | Failure] = {}
        if self.cache is not None and first:
            for k, rec in self.cache.get_many(first).items():
                answers[k] = Result.from_record(rec, calls[first[k]].endpoint, cached=True)
        stats.cached = len(answers)
        todo = [first[k] for k in first if k not in answers]
        self._state = _State(stats=stats)
        if self.progress:
            self.progress(stats)
        error: JudgeError | None = None
        if todo:
            try:
                await self._send_all(calls, keys, todo, answers)
            except _Fatal as e:
                error = JudgeError(str(e))
        stats.skipped = len([i for i in todo if keys[i] not in answers])
        stats.elapsed_s = time.perf_counter() - t0
        self._spent_calls += stats.made
        self._spent_cost += stats.cost
        results: list[Result | Failure | None] = [answers.get(k) for k in keys]
        if self.progress:
            self.progress(stats)
        if error is not None:
            raise JudgeError(
                str(error), [r if isinstance(r, Result) else None for r in results], stats
            )
        if self._state.budget_hit:
            raise BudgetExhausted(
                f"budget reached ({self._state.budget_hit}): {stats.skipped} of {stats.unique} "
                "distinct calls not sent",
                [r if isinstance(r, Result) else None for r in results],
                stats,
            )
        return Run(results, stats)

    # -- internals ------------------------------------------------------------------------
    async def _send_all(
        self,
        calls: Sequence[Call],
        keys: list[str],
        todo: list[int],
        answers: dict[str, Result | Failure],
    ) -> None:
        from contextlib import AsyncExitStack

        import httpx

        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in todo:
            queue.put_nowait(i)
        timeout = httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))
        # one keep-alive connection per worker, each in its own pool: httpcore's pool scans
        # every connection it holds on each request, which costs more CPU than the request
        # itself once it holds dozens
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        ssl_ctx = httpx.create_ssl_context()  # built once: loading the CA bundle is slow
        async with AsyncExitStack() as stack:
            workers = []
            for _ in range(min(self.concurrency, len(todo))):
                http = await stack.enter_async_context(
                    httpx.AsyncClient(limits=limits, timeout=timeout, verify=ssl_ctx)
                )
                workers.append(asyncio.create_task(self._worker(http, queue, calls, keys, answers)))
            try:
                done, pending = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                # read every finished worker's exception (several can fail at once, e.g. on
                # HTTP 401): one left unread is printed with its traceback at exit
                errors = [e for e in (t.exception() for t in done) if e is not None]
                if errors:
                    for p in pending:
                        p.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    raise errors[0]
            except asyncio.CancelledError:
                for w in workers:
                    w.cancel()
                raise

    def _budget_allows(self, call: Call) -> bool:
        st, b = self._state, self.budget
        if st.budget_hit:
            return False
        made = self._spent_calls + st.stats.made
        if b.max_calls is not None and made + st.inflight >= b.max_calls:
            st.budget_hit = f"--max-calls {b.max_calls}"
            return False
        if b.max_cost is not None:
            ep = call.endpoint
            chars = sum(len(c) for _, c in call.messages)
            est = ep.cost(chars // 4 + 8, call.max_tokens or 256)
            cost = self._spent_cost + st.stats.cost
            per = cost / made if made else est
            if cost + st.inflight * per + max(est, per) > b.max_cost:
                st.budget_hit = f"--max-cost {b.max_cost:g}"
                return False
        return True

    async def _worker(
        self,
        http: Any,
        queue: asyncio.Queue[int],
        calls: Sequence[Call],
        keys: list[str],
        answers: dict[str, Result | Failure],
    ) -> None:
        st = self._state
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            call = calls[i]
            if not self._budget_allows(call):
                continue
            st.inflight += 1
            try:
                res = await self._one(http, call)
            finally:
                st.inflight -= 1
            key = keys[i]
            answers[key] = res
            if isinstance(res, Result):
                if self.cache is not None:
                    self.cache.put(key, call.endpoint.model, res.record())
                st.stats.made += 1
                st.stats.tokens_in += res.tokens_in
                st.stats.tokens_out += res.tokens_out
                st.stats.cost += res.cost
                if res.content.strip():
                    st.consecutive_bad = 0
                else:
                    st.stats.empty += 1
                    st.consecutive_bad += 1
                    st.last_bad = "empty answers (no text in choices[0].message.content)"
            else:
                st.stats.failed += 1
                st.consecutive_bad += 1
                st.last_bad = res.reason
            if self.progress:
                self.progress(st.stats)
            if st.consecutive_bad >= BREAKER:
                raise _Fatal(
                    f"{call.endpoint.chat_url}: {st.consecutive_bad} calls in a row failed "
                    f"(model {call.endpoint.model!r}); last: {st.last_bad}"
                )

    async def _pause(self) -> None:
        wait = self._state.not_before - time.monotonic()
        if wait > 0:
            self._state.stats.waited_s += wait
            await asyncio.sleep(wait)

    async def _one(self, http: Any, call: Call) -> Result | Failure:
        ep = call.endpoint
        attempt = 0
        while True:
            await self._pause()
            try:
                return await self._post(http, call)
            except _Retry as r:
                if attempt >= self.retries:
                    if r.status is None and r.reason.startswith("cannot connect"):
                        raise _Fatal(
                            f"{ep.chat_url}: {r.reason} (tried {attempt + 1} times); "
                            "is the server running and the URL right?"
                        ) from None
                    return Failure(f"{r.reason} (gave up after {attempt + 1} tries)", r.status)
                backoff = min(self.max_backoff, self.backoff * 2**attempt)
                wait = backoff * (0.5 + 0.5 * self._rng.random())
                if r.wait is not None:
                    if r.wait > self.max_retry_after:
                        raise _Fatal(
                            f"{ep.chat_url}: asked to wait {r.wait:.0f} s (Retry-After), "
                            f"more than {self.max_retry_after:.0f} s; try again later"
                        ) from None
                    wait = max(wait, r.wait)
                    # everyone waits: the server told us it is overloaded
                    self._state.not_before = max(self._state.not_before, time.monotonic() + r.wait)
                attempt += 1
                self._state.stats.retries += 1
                self._state.stats.waited_s += wait
                await asyncio.sleep(wait)

    async def _post(self, http: Any, call: Call) -> Result | Failure:
        import httpx

        ep = call.endpoint
        use_lp = call.logprobs and ep.chat_url not in self._no_logprobs
        headers = {"Content-Type": "application/json"}
        key = ep.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        t0 = time.perf_counter()
        try:
            r = await http.post(ep.chat_url, json=call.body(use_lp), headers=headers)
        except httpx.ConnectError as e:
            raise _Retry(f"cannot connect ({_short(e)})") from None
        except httpx.TimeoutException as e:
            raise _Retry(f"timed out after {self.timeout:g} s ({type(e).__name__})") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
            raise _Retry(f"connection lost ({_short(e)})") from None
        latency = round(time.perf_counter() - t0, 6)  # as stored in the cache
        status = r.status_code
        if status == 200:
            try:
                data = r.json()
                choice = data["choices"][0]
                msg = choice.get("message") or {}
                content = msg.get("content")
                content = "" if content is None else str(content)
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise _Retry(
                    "invalid response body (no choices[0].message)", status=status
                ) from None
            usage = data.get("usage") or {}
            ti = int(usage.get("prompt_tokens") or 0)
            to = int(usage.get("completion_tokens") or 0)
            return Result(
                content=content,
                tokens_in=ti,
                tokens_out=to,
                latency_s=latency,
                finish_reason=choice.get("finish_reason"),
                logprobs=_logprobs(choice) if use_lp else None,
                cached=False,
                cost=ep.cost(ti, to),
            )
        detail = _error_message(r.content)
        if status in RETRY_STATUS:
            raise _Retry(f"HTTP {status}: {detail}", wait=retry_after(r.headers), status=status)
        if status in (401, 403):
            raise _Fatal(
                f"{ep.chat_url}: HTTP {status} ({detail}); the API key is read from "
                f"${ep.api_key_env} ({'set' if key else 'not set'}); set it or name another "
                "variable with --api-key-env"
            )
        if status == 404:
            if "model" in detail.lower():
                raise _Fatal(f"{ep.chat_url}: model {ep.model!r} not found (HTTP 404: {detail})")
            raise _Fatal(
                f"{ep.chat_url}: HTTP 404 ({detail or 'not found'}); is the base URL right? "
                "(an OpenAI-compatible server answers at .../v1/chat/completions)"
            )
        if status in FATAL_STATUS:
            raise _Fatal(f"{ep.chat_url}: HTTP {status} ({detail})")
        if use_lp and status in (400, 422) and "logprob" in detail.lower():
            self._no_logprobs.add(ep.chat_url)
            self._state.stats.logprobs_refused = True
            return await self._post(http, call)
        return Failure(f"HTTP {status}: {detail}", status)


@dataclass
class _State:
    stats: Stats
    inflight: int = 0
    not_before: float = 0.0
    consecutive_bad: int = 0
    last_bad: str = ""
    budget_hit: str = ""


def _short(e: BaseException) -> str:
    s = str(e).strip() or type(e).__name__
    return s[:160]
