"""Web-app load and fault benchmark (`prefkit serve`).

N concurrent annotator clients (threads, one httpx connection each) on loopback submit votes
with client-generated idempotency keys; some are retried sequentially and some are sent twice
at once. Afterwards the database must hold exactly one vote per key: none lost, none doubled.
Then the server is killed with SIGKILL mid-load and restarted: every vote that got a 2xx
answer must be present, and re-sending the unanswered ones completes the set exactly once.

    python benchmarks/bench_serve.py --db sqlite --votes 20000 --clients 50
    python benchmarks/bench_serve.py --db postgresql   # starts a throwaway PostgreSQL 15
    python benchmarks/bench_serve.py --driver wrk --db both --seconds 30

`--driver wrk` replaces the Python client threads by `wrk` (C, Debian package `wrk`) running
`benchmarks/wrk/votes.lua`: the same vote bodies, unique keys, 10% sequential retries of the same
key, many connections per annotator set; it spends a fraction of the CPU of the Python
clients, so on a 2-core machine the server gets most of a core. It runs for a fixed time;
afterwards every key wrk saw acknowledged must be in the database exactly once, and no key
may be stored twice. The SIGKILL run stays on the Python driver (it needs per-vote answers).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ADMIN = "bench-admin-token"


@dataclass
class LoadResult:
    attempted: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    concurrent_dupes: int = 0
    mismatches: int = 0  # a retry answered differently from the first answer
    errors: int = 0
    error_kinds: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def votes_per_s(self) -> float:
        return len(self.acked) / self.wall_s if self.wall_s else 0.0

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


@contextmanager
def server_process(db_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`prefkit serve` as a real process (python -m prefkit.serve) on 127.0.0.1:port."""
    cmd = [sys.executable, "-m", "prefkit.serve", "--db", db_url, "--port", str(port),
           "--admin-token", ADMIN]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def setup_campaign(url: str, n_items: int, n_annotators: int) -> tuple[int, list[str], list[int]]:
    """A campaign of `n_items` pairs and `n_annotators` invites; returns (id, tokens, item ids)."""
    rows = [
        {"prompt": f"q{i}", "response_a": f"answer A {i}", "response_b": f"answer B {i}",
         "model_a": f"m{i % 5}", "model_b": f"m{(i + 1) % 5}", "meta": {"pair_id": f"p{i}"}}
        for i in range(n_items)
    ]  # fmt: skip
    h = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=url, headers=h, timeout=60) as c:
        r = c.post("/api/campaigns", json={"name": "load", "rows": rows, "overlap": 1000})
        r.raise_for_status()
        cid = int(r.json()["id"])
        tokens = [
            c.post(f"/api/campaigns/{cid}/annotators", json={"name": f"c{i}"}).json()["token"]
            for i in range(n_annotators)
        ]
        # item ids: the first task of one annotator tells the id range
        first = c.get(f"/api/campaigns/{cid}").json()
    assert first["items"] == n_items
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[0]}"}) as c:
        item0 = int(c.get("/api/task/next").json()["item_id"])
    return cid, tokens, list(range(item0, item0 + n_items))


def run_load(
    url: str,
    tokens: list[str],
    item_ids: list[int],
    n_votes: int,
    retry_p: float = 0.1,
    race_p: float = 0.05,
    seed: int = 0,
    stop: threading.Event | None = None,
) -> LoadResult:
    """`len(tokens)` client threads submit `n_votes` votes in all (keys unique per vote)."""
    res = LoadResult()
    lock = threading.Lock()
    n_clients = len(tokens)
    per = [n_votes // n_clients + (i < n_votes % n_clients) for i in range(n_clients)]
    outcomes = ["a", "b", "tie", "both_bad"]

    def client(ci: int) -> None:
        rng = random.Random(seed * 1000 + ci)
        headers = {"Authorization": f"Bearer {tokens[ci]}"}
        with (
            httpx.Client(base_url=url, headers=headers, timeout=30) as c,
            httpx.Client(base_url=url, headers=headers, timeout=30) as c2,
            ThreadPoolExecutor(1) as side,
        ):
            for _ in range(per[ci]):
                if stop is not None and stop.is_set():
                    return
                key = uuid.uuid4().hex
                body = {"idempotency_key": key, "item_id": rng.choice(item_ids),
                        "outcome": rng.choice(outcomes), "shown_first": rng.choice("ab"),
                        "strength": round(rng.random(), 3)}  # fmt: skip
                with lock:
                    res.attempted[key] = (ci, body)
                race = rng.random() < race_p
                twin = side.submit(c2.post, "/api/votes", json=body) if race else None
                t0 = time.perf_counter()
                try:
                    r = c.post("/api/votes", json=body)
                    dt = time.perf_counter() - t0
                    answers = [r]
                    if twin is not None:
                        answers.append(twin.result())
                    if rng.random() < retry_p:
                        answers.append(c.post("/api/votes", json=body))
                except httpx.HTTPError as e:
                    with lock:
                        res.errors += 1
                        res.error_kinds.append(repr(e))
                    if stop is not None:
                        return  # the server is gone (fault test)
                    continue
                ok = [a.json() for a in answers if a.is_success]
                with lock:
                    res.latencies.append(dt)
                    res.retries += len(answers) - 1 - (twin is not None)
                    res.concurrent_dupes += twin is not None
                    if ok:
                        res.acked[key] = ok[0]
                        res.mismatches += sum(o != ok[0] for o in ok[1:])
                    if len(ok) != len(answers):
                        res.errors += 1
                        res.error_kinds += [
                            f"HTTP {a.status_code}: {a.text[:200]}"
                            for a in answers
                            if not a.is_success
                        ]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res.wall_s = time.perf_counter() - t0
    return res


def db_votes(url: str, cid: int) -> list[dict[str, Any]]:
    h = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.get(f"{url}/api/campaigns/{cid}/votes", headers=h, timeout=120)
    r.raise_for_status()
    out: list[dict[str, Any]] = r.json()
    return out


def free_port() -> int:
    from prefkit.serve.localpg import free_port as fp

    return fp()


def bench(db_url: str, n_votes: int, n_clients: int, kill_votes: int, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Throughput run + SIGKILL run on one database URL; returns the numbers and checks."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"votes": n_votes, "clients": n_clients}
    with server_process(db_url, port):
        cid, tokens, items = setup_campaign(url, 500, n_clients)
        load = run_load(url, tokens, items, n_votes, seed=seed)
        rows = db_votes(url, cid)
    keys = [r["idempotency_key"] for r in rows]
    out.update(
        votes_per_s=round(load.votes_per_s, 1),
        p50_ms=round(load.p(50), 2),
        p99_ms=round(load.p(99), 2),
        wall_s=round(load.wall_s, 2),
        retries=load.retries,
        concurrent_duplicates=load.concurrent_dupes,
        db_votes=len(rows),
        distinct_keys=len(set(keys)),
        lost=len(set(load.acked) - set(keys)),
        retry_mismatches=load.mismatches,
        errors=load.errors,
        error_kinds=sorted(set(load.error_kinds))[:5],
    )
    out["kill"] = kill_run(db_url, n_clients, kill_votes, seed)
    return out


def wrk_load(
    url: str, tokens: list[str], item_ids: list[int], seconds: int, connections: int,
    threads: int = 1, retry_p: float = 0.1, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run wrk with votes.lua; returns its counters and the keys it saw acknowledged."""
    script = Path(__file__).resolve().parent / "wrk" / "votes.lua"
    with tempfile.TemporaryDirectory() as d:
        tok, its, out = Path(d, "tokens"), Path(d, "items"), Path(d, "acked")
        tok.write_text("\n".join(tokens) + "\n")
        its.write_text("\n".join(map(str, item_ids)) + "\n")
        env = {**os.environ, "WRK_THREADS": str(threads), "WRK_OUT": str(out)}
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "30s", "-s", str(script), url, "--", str(tok), str(its),
               str(seed), str(retry_p)]  # fmt: skip
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        stats: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        stats["acked_keys"] = [k for k in out.read_text().splitlines() if k]
    return stats


def bench_wrk(db_url: str, seconds: int, n_clients: int, connections: int) -> dict[str, Any]:
    """Throughput with wrk as the client; exactly-once checks on the acknowledged keys."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process(db_url, port):
        cid, tokens, items = setup_campaign(url, 500, n_clients)
        st = wrk_load(url, tokens, items, seconds, connections)
        time.sleep(1.0)  # requests in flight when wrk stopped finish on the server
        rows = db_votes(url, cid)
    keys = [r["idempotency_key"] for r in rows]
    acked = set(st.pop("acked_keys"))
    dur = st["duration_us"] / 1e6
    return {
        "driver": "wrk",
        "annotators": n_clients,
        "connections": connections,
        "seconds": round(dur, 2),
        "votes_per_s": round(len(acked) / dur, 1),
        "requests_per_s": round(st["requests"] / dur, 1),
        "p50_ms": round(st["p50_us"] / 1000, 2),
        "p99_ms": round(st["p99_us"] / 1000, 2),
        "acked": len(acked),
        "sent_new_keys": st["sent_new"],
        "retries": st["retries"],
        "non_2xx": st["non2xx"],
        "socket_errors": st["socket_errors"],
        "db_votes": len(rows),
        "distinct_keys": len(set(keys)),
        "lost": len(acked - set(keys)),
    }


def _acked_so_far(url: str, cid: int, before: int) -> int:
    h = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.get(f"{url}/api/campaigns/{cid}", headers=h, timeout=30)
    return int(r.json()["submissions"]) - before


def kill_run(db_url: str, n_clients: int, n_votes: int, seed: int = 0, after_s: float = 0.2, min_acked: int = 50) -> dict[str, Any]:  # fmt: skip
    """Load, SIGKILL the server mid-load, restart, check acked votes; re-send the rest."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    with server_process(db_url, port) as proc:
        cid, tokens, items = setup_campaign(url, 200, n_clients)
        before = len(db_votes(url, cid))
        box: dict[str, LoadResult] = {}
        th = threading.Thread(
            target=lambda: box.setdefault(
                "r", run_load(url, tokens, items, n_votes, seed=seed, stop=stop)
            )  # fmt: skip
        )
        th.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(box.get("r", LoadResult()).acked) == 0:
            if th.is_alive() and _acked_so_far(url, cid, before) >= min_acked:
                break
            time.sleep(0.05)
        time.sleep(after_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stop.set()
        th.join()
    load = box["r"]
    port2 = free_port()
    url2 = f"http://127.0.0.1:{port2}"
    with server_process(db_url, port2):
        rows = db_votes(url2, cid)
        present = {r["idempotency_key"] for r in rows}
        lost = sorted(set(load.acked) - present)
        # re-send every attempted vote with its key: those already in count once
        resent_mismatch = 0
        clients = [
            httpx.Client(base_url=url2, headers={"Authorization": f"Bearer {t}"}, timeout=30)
            for t in tokens
        ]
        for key, (ci, body) in load.attempted.items():
            r = clients[ci].post("/api/votes", json=body)
            r.raise_for_status()
            if key in load.acked and r.json() != load.acked[key]:
                resent_mismatch += 1
        for c in clients:
            c.close()
        final = db_votes(url2, cid)
    fkeys = [r["idempotency_key"] for r in final]
    return {
        "acked_before_kill": len(load.acked),
        "attempted": len(load.attempted),
        "present_after_restart": len(present & set(load.acked)),
        "lost_acked": len(lost),
        "rows_after_resend": len(final) - before,
        "duplicate_keys": len(fkeys) - len(set(fkeys)),
        "resend_mismatches": resent_mismatch,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--votes", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--kill-votes", type=int, default=5000)
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    ap.add_argument("--driver", choices=["python", "wrk"], default="python")
    ap.add_argument("--seconds", type=int, default=30, help="wrk driver: run time.")
    ap.add_argument("--connections", type=int, default=50, help="wrk driver: connections.")
    a = ap.parse_args()
    if a.driver == "wrk":
        main_wrk(a)
        return
    results: dict[str, Any] = {}
    if a.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            results["sqlite"] = bench(f"sqlite:///{d}/bench.db", a.votes, a.clients, a.kill_votes)
        print(json.dumps({"sqlite": results["sqlite"]}), flush=True)
    if a.db in ("postgresql", "both"):
        from prefkit.serve.localpg import local_postgres, new_database

        with local_postgres() as server:
            results["postgresql"] = bench(new_database(server), a.votes, a.clients, a.kill_votes)
        print(json.dumps({"postgresql": results["postgresql"]}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        ok = r["db_votes"] == r["votes"] == r["distinct_keys"] and r["lost"] == 0
        ok = ok and r["kill"]["lost_acked"] == 0 and r["kill"]["duplicate_keys"] == 0
        ok = ok and r["kill"]["rows_after_resend"] == r["kill"]["attempted"]
        print(f"{name}: {'OK' if ok else 'FAILED'} {r['votes_per_s']} votes/s p99 {r['p99_ms']} ms")
        if not ok:
            sys.exit(1)


def main_wrk(a: argparse.Namespace) -> None:
    results: dict[str, Any] = {}
    if a.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/bench.db"
            results["sqlite"] = bench_wrk(url, a.seconds, a.clients, a.connections)
        print(json.dumps({"sqlite": results["sqlite"]}), flush=True)
    if a.db in ("postgresql", "both"):
        from prefkit.serve.localpg import local_postgres, new_database

        with local_postgres() as server:
            pg = new_database(server)
            results["postgresql"] = bench_wrk(pg, a.seconds, a.clients, a.connections)
        print(json.dumps({"postgresql": results["postgresql"]}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        # every acknowledged key stored once; stored keys are at most the keys wrk sent
        ok = r["lost"] == 0 and r["db_votes"] == r["distinct_keys"]
        ok = ok and r["acked"] <= r["db_votes"] <= r["sent_new_keys"]
        print(f"{name}: {'OK' if ok else 'FAILED'} {r['votes_per_s']} votes/s p99 {r['p99_ms']} ms")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
