"""Web-app load and fault benchmark (`prefkit serve`).

N concurrent annotator clients (threads, one httpx connection each) on loopback submit votes
on the items the server assigned to them, with client-generated idempotency keys; some are
retried sequentially and some are sent twice at once. Afterwards the database must hold
exactly one vote per key: none lost, none doubled. Then the server is killed with SIGKILL
while every client is still sending, and restarted: every vote that got a 2xx answer must be
present, and re-sending the unanswered ones completes the set exactly once.

`--attack`: the same clients vote twice on a fresh server, once alone and once while one
more client (its own process) sends 100 MB request bodies to the vote endpoint in a loop —
without a token, with a valid token and a Content-Length, and with a valid token in chunked
encoding (no Content-Length: the server has to count). Reports the p50/p99 latency of the
voting clients in both runs, their ratio, and the server's peak resident memory (VmHWM).

    python benchmarks/bench_serve.py --db sqlite --votes 20000 --clients 50
    python benchmarks/bench_serve.py --db postgresql   # starts a throwaway PostgreSQL 15
    python benchmarks/bench_serve.py --attack --db sqlite --votes 6000 --clients 50
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
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ADMIN = "bench-admin-token"
OUTCOMES = ("a", "b", "tie", "both_bad")
ATTACK_BODY = 100 << 20  # bytes per attacking request


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
    cut_off: int = 0  # clients whose last request failed because the server went away
    wall_s: float = 0.0

    @property
    def votes_per_s(self) -> float:
        return len(self.acked) / self.wall_s if self.wall_s else 0.0

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


@dataclass
class Campaign:
    cid: int
    tokens: list[str]
    assigned: list[list[int]]  # per annotator: the item ids the server assigned to it
    setup_keys: set[str]


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


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM, Linux /proc) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def vote_body(rng: random.Random, key: str, item_id: int) -> dict[str, Any]:
    """A vote whose strength agrees with its outcome (canonical: 1 = strongly prefers a)."""
    outcome = rng.choice(OUTCOMES)
    m = round(0.01 + 0.99 * rng.random(), 3) / 2
    strength = {"a": 0.5 + m, "b": 0.5 - m, "tie": 0.5}.get(outcome)
    return {"idempotency_key": key, "item_id": item_id, "outcome": outcome, "strength": strength}


def setup_campaign(url: str, n_items: int, n_annotators: int, per_annotator: int = 10) -> Campaign:
    """A campaign of `n_items` unlabelled pairs and `n_annotators` invites; each annotator
    gets `per_annotator` tasks assigned by the server (answered once each, the votes to come
    are revisions: the server accepts votes only on assigned tasks)."""
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
    assigned: list[list[int]] = []
    keys: set[str] = set()
    rng = random.Random(0)
    for tok in tokens:
        mine = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tok}"}, timeout=60) as c:  # fmt: skip
            for _ in range(per_annotator):
                item = int(c.get("/api/task/next").json()["item_id"])
                key = f"setup-{uuid.uuid4().hex}"
                c.post("/api/votes", json=vote_body(rng, key, item)).raise_for_status()
                mine.append(item)
                keys.add(key)
        assigned.append(mine)
    return Campaign(cid, tokens, assigned, keys)


def run_load(
    url: str,
    camp: Campaign,
    n_votes: int | None,
    retry_p: float = 0.1,
    race_p: float = 0.05,
    seed: int = 0,
    stop: threading.Event | None = None,
) -> LoadResult:
    """`len(tokens)` client threads submit `n_votes` votes in all (keys unique per vote), or,
    with `n_votes=None`, vote until the server goes away (or `stop` is set)."""
    res = LoadResult()
    lock = threading.Lock()
    n_clients = len(camp.tokens)
    per = [None if n_votes is None else n_votes // n_clients + (i < n_votes % n_clients) for i in range(n_clients)]  # fmt: skip

    def client(ci: int) -> None:
        rng = random.Random(seed * 1000 + ci)
        headers = {"Authorization": f"Bearer {camp.tokens[ci]}"}
        with (
            httpx.Client(base_url=url, headers=headers, timeout=30) as c,
            httpx.Client(base_url=url, headers=headers, timeout=30) as c2,
            ThreadPoolExecutor(1) as side,
        ):
            sent = 0
            while per[ci] is None or sent < per[ci]:
                sent += 1
                if stop is not None and stop.is_set():
                    return
                key = uuid.uuid4().hex
                body = vote_body(rng, key, rng.choice(camp.assigned[ci]))
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
                        if stop is not None or per[ci] is None:
                            res.cut_off += 1
                    if stop is not None or per[ci] is None:
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


def bench(db_url: str, n_votes: int, n_clients: int, kill_votes: int | None = None, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Throughput run + SIGKILL run on one database URL; returns the numbers and checks.
    (`kill_votes` is not used any more: the kill run's clients vote until the kill.)"""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {"votes": n_votes, "clients": n_clients}
    with server_process(db_url, port):
        camp = setup_campaign(url, 500, n_clients)
        load = run_load(url, camp, n_votes, seed=seed)
        rows = [r for r in db_votes(url, camp.cid) if r["idempotency_key"] not in camp.setup_keys]  # fmt: skip
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
    out["kill"] = kill_run(db_url, n_clients, seed)
    return out


def wrk_load(
    url: str, camp: Campaign, seconds: int, connections: int,
    threads: int = 1, retry_p: float = 0.1, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run wrk with votes.lua; returns its counters and the keys it saw acknowledged."""
    script = Path(__file__).resolve().parent / "wrk" / "votes.lua"
    with tempfile.TemporaryDirectory() as d:
        tok, out = Path(d, "tokens"), Path(d, "acked")
        tok.write_text("".join(f"{t} {','.join(map(str, its))}\n" for t, its in zip(camp.tokens, camp.assigned, strict=True)))  # fmt: skip
        env = {**os.environ, "WRK_THREADS": str(threads), "WRK_OUT": str(out)}
        cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "30s", "-s", str(script), url, "--", str(tok),
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
        camp = setup_campaign(url, 500, n_clients)
        st = wrk_load(url, camp, seconds, connections)
        time.sleep(1.0)  # requests in flight when wrk stopped finish on the server
        rows = [r for r in db_votes(url, camp.cid) if r["idempotency_key"] not in camp.setup_keys]  # fmt: skip
    # keys are unique per annotator: identify a stored vote by (annotator, key)
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


def kill_run(db_url: str, n_clients: int, seed: int = 0, min_acked: int = 50) -> dict[str, Any]:
    """Clients vote without end; once the server has stored `min_acked` of their votes it is
    SIGKILLed (every client is still sending: each one's last request fails), restarted on
    the same database, acknowledged votes checked, and every attempted vote re-sent."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process(db_url, port) as proc:
        camp = setup_campaign(url, 200, n_clients)
        before = len(db_votes(url, camp.cid))
        box: dict[str, LoadResult] = {}
        th = threading.Thread(target=lambda: box.setdefault("r", run_load(url, camp, None, seed=seed)))  # fmt: skip
        th.start()
        deadline = time.monotonic() + 120
        while _acked_so_far(url, camp.cid, before) < min_acked:
            if time.monotonic() > deadline or not th.is_alive():
                raise RuntimeError("the load did not get going")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        th.join()
    load = box["r"]
    port2 = free_port()
    url2 = f"http://127.0.0.1:{port2}"
    with server_process(db_url, port2):
        rows = db_votes(url2, camp.cid)
        present = {r["idempotency_key"] for r in rows}
        lost = sorted(set(load.acked) - present)
        # re-send every attempted vote with its key: those already in count once
        resent_mismatch = 0
        clients = [
            httpx.Client(base_url=url2, headers={"Authorization": f"Bearer {t}"}, timeout=30)
            for t in camp.tokens
        ]
        for key, (ci, body) in load.attempted.items():
            r = clients[ci].post("/api/votes", json=body)
            r.raise_for_status()
            if key in load.acked and r.json() != load.acked[key]:
                resent_mismatch += 1
        for c in clients:
            c.close()
        final = db_votes(url2, camp.cid)
    fkeys = [(r["annotator_id"], r["idempotency_key"]) for r in final]
    return {
        "clients": n_clients,
        "cut_off_clients": load.cut_off,
        "acked_before_kill": len(load.acked),
        "attempted": len(load.attempted),
        "present_after_restart": len(present & set(load.acked)),
        "lost_acked": len(lost),
        "rows_after_resend": len(final) - before,
        "duplicate_keys": len(fkeys) - len(set(fkeys)),
        "resend_mismatches": resent_mismatch,
    }


# ---------------------------------------------------------------------------------------
# A client sending 100 MB bodies in a loop (its own process)


def _attack_once(port: int, mode: str, token: str, chunk: memoryview) -> tuple[str, int]:
    """One 100 MB request body: send until the server answers or hangs up. Returns the
    answer's status line and how many body bytes the connection took."""
    auth = f"Authorization: Bearer {token}\r\n" if mode != "anonymous" else ""
    framing = "Transfer-Encoding: chunked\r\n" if mode == "chunked" else f"Content-Length: {ATTACK_BODY}\r\n"  # fmt: skip
    head = f"POST /api/votes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}{framing}\r\n"  # fmt: skip
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(head.encode())
            while sent < ATTACK_BODY:
                if mode == "chunked":
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                else:
                    s.sendall(chunk)
                sent += len(chunk)
            if mode == "chunked":
                s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered early and closed: what it should do
        try:
            status = s.recv(200).split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
        except OSError as e:
            status = f"reset ({e.__class__.__name__})"
    return status, sent


def attacker_main(port: int, token: str, out: Path) -> None:
    """Attack until SIGTERM, then write what the server answered to `out` (JSON)."""
    chunk = memoryview(b"{" + b" " * ((1 << 20) - 1))
    counts: dict[str, int] = {}
    modes = ("anonymous", "token", "chunked")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.with_suffix(".started").touch()
    n = total = 0
    while not stop.is_set():
        mode = modes[n % 3]
        status, sent = _attack_once(port, mode, token, chunk)
        counts[f"{mode}: {status}"] = counts.get(f"{mode}: {status}", 0) + 1
        n += 1
        total += sent
    report = {"requests": n, "body_bytes_each": ATTACK_BODY, "bytes_taken": total, "answers": counts}  # fmt: skip
    out.write_text(json.dumps(report))


def attack_bench(make_db: Callable[[], str], n_votes: int, n_clients: int, seed: int = 0, repeats: int = 1) -> dict[str, Any]:  # fmt: skip
    """The voting clients alone, then with the attacker, each on a fresh server and database
    (`make_db()`), `repeats` times alternating (other jobs on a shared machine change the
    latencies from minute to minute; alternating runs see the same conditions on average).
    Reports p50/p99 of the voting clients per run, the median p99 ratio, and the server's
    peak memory."""
    out: dict[str, Any] = {"votes": n_votes, "clients": n_clients, "runs": []}
    for rep in range(repeats):
        pair: dict[str, Any] = {}
        for run in ("alone", "attacked"):
            pair[run] = _attack_run(make_db(), n_votes, n_clients, seed + rep, run == "attacked")
        pair["p99_ratio"] = round(pair["attacked"]["p99_ms"] / pair["alone"]["p99_ms"], 2)
        pair["p50_ratio"] = round(pair["attacked"]["p50_ms"] / pair["alone"]["p50_ms"], 2)
        out["runs"].append(pair)
    out["p99_ratio_median"] = float(np.median([r["p99_ratio"] for r in out["runs"]]))
    out["p99_ratio_max"] = max(r["p99_ratio"] for r in out["runs"])
    out["server_peak_rss_mb_max"] = max(r[k]["server_peak_rss_mb"] for r in out["runs"] for k in ("alone", "attacked"))  # fmt: skip
    # the first pair, flat (what tests read)
    out.update({k: out["runs"][0][k] for k in ("alone", "attacked", "p99_ratio", "p50_ratio")})
    return out


def _attack_run(db_url: str, n_votes: int, n_clients: int, seed: int, attack: bool) -> dict[str, Any]:  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server_process(db_url, port) as proc:
        camp = setup_campaign(url, 500, n_clients)
        attacker = None
        with tempfile.TemporaryDirectory() as d:
            report = Path(d) / "attack.json"
            if attack:
                cmd = [sys.executable, __file__, "--attacker", str(port), camp.tokens[0], str(report)]  # fmt: skip
                attacker = subprocess.Popen(cmd)
                started = report.with_suffix(".started")
                deadline = time.monotonic() + 60
                while not started.exists():  # the attack is under way before the votes
                    if time.monotonic() > deadline or attacker.poll() is not None:
                        raise RuntimeError("the attacking client did not start")
                    time.sleep(0.05)
            load = run_load(url, camp, n_votes, seed=seed)
            if attacker is not None:
                attacker.terminate()  # SIGTERM: it finishes its request and reports
                attacker.wait(120)
            rss = peak_rss_mb(proc.pid)
            attack_report = json.loads(report.read_text()) if report.exists() else None
    return {
        "votes_per_s": round(load.votes_per_s, 1),
        "p50_ms": round(load.p(50), 2),
        "p99_ms": round(load.p(99), 2),
        "acked": len(load.acked),
        "errors": load.errors,
        "server_peak_rss_mb": round(rss, 1),
        **({"attacker": attack_report} if attack_report else {}),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--attacker":
        port, token, report = sys.argv[2:5]
        attacker_main(int(port), token, Path(report))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--votes", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    ap.add_argument("--driver", choices=["python", "wrk"], default="python")
    ap.add_argument("--attack", action="store_true", help="p99 and memory with a 100 MB-body client.")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=1, help="--attack: alternating pairs of runs.")  # fmt: skip
    ap.add_argument("--seconds", type=int, default=30, help="wrk driver: run time.")
    ap.add_argument("--connections", type=int, default=50, help="wrk driver: connections.")
    a = ap.parse_args()
    if a.driver == "wrk":
        main_wrk(a)
        return
    if a.attack:
        main_attack(a)
        return
    results: dict[str, Any] = {}
    if a.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            results["sqlite"] = bench(f"sqlite:///{d}/bench.db", a.votes, a.clients)
        print(json.dumps({"sqlite": results["sqlite"]}), flush=True)
    if a.db in ("postgresql", "both"):
        from prefkit.serve.localpg import local_postgres, new_database

        with local_postgres() as server:
            results["postgresql"] = bench(new_database(server), a.votes, a.clients)
        print(json.dumps({"postgresql": results["postgresql"]}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        ok = r["db_votes"] == r["votes"] == r["distinct_keys"] and r["lost"] == 0
        ok = ok and r["kill"]["lost_acked"] == 0 and r["kill"]["duplicate_keys"] == 0
        ok = ok and r["kill"]["rows_after_resend"] == r["kill"]["attempted"]
        ok = ok and r["kill"]["cut_off_clients"] == r["kill"]["clients"]
        print(f"{name}: {'OK' if ok else 'FAILED'} {r['votes_per_s']} votes/s p99 {r['p99_ms']} ms")
        if not ok:
            sys.exit(1)


def main_attack(a: argparse.Namespace) -> None:
    results: dict[str, Any] = {}
    if a.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            n = iter(range(1000))
            results["sqlite"] = attack_bench(lambda: f"sqlite:///{d}/{next(n)}.db", a.votes, a.clients, repeats=a.repeats)  # fmt: skip
        print(json.dumps({"sqlite": results["sqlite"]}), flush=True)
    if a.db in ("postgresql", "both"):
        from prefkit.serve.localpg import local_postgres, new_database

        with local_postgres() as server:
            results["postgresql"] = attack_bench(lambda: new_database(server), a.votes, a.clients, repeats=a.repeats)  # fmt: skip
        print(json.dumps({"postgresql": results["postgresql"]}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    for name, r in results.items():
        mem = r["server_peak_rss_mb_max"]
        errors = sum(x[k]["errors"] for x in r["runs"] for k in ("alone", "attacked"))
        ok = r["p99_ratio_median"] <= 2.0 and mem < 500 and errors == 0
        ratios = ", ".join(f"{x['alone']['p99_ms']} -> {x['attacked']['p99_ms']} ms" for x in r["runs"])  # fmt: skip
        print(f"{name}: {'OK' if ok else 'FAILED'} p99 {ratios} (median x{r['p99_ratio_median']}, max x{r['p99_ratio_max']}), server peak {mem} MiB")  # fmt: skip
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
