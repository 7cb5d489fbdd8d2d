"""Judge stage benchmark: client throughput and cache against a local OpenAI-compatible
server, side by side with the `openai` client, and hybrid routing on simulated judges.

Throughput: `tests/judge/fake_openai.py` under uvicorn on loopback answers every request
after `--delay` seconds (default 0.2). The whole command `prefkit judge run IN OUT
--concurrency 32` (a real process, defaults otherwise: both orders, cache on) labels
`--pairs` simulated pairs; calls/s = requests the server received / wall time of the command
(start-up, reading, writing included). Then the same command again (warm cache): it must send
no request. Side by side, in this script's process, against the same server and the same
messages: a plain sequential `openai.OpenAI().chat.completions.create` loop (`--openai-calls`
calls), and the `openai.AsyncOpenAI` client with 32 requests in flight (asyncio.gather
behind a semaphore) for the same calls as `judge run`.

Routing: `simulate("judges", human_share=1.0)` gives every pair judge and human votes and a
known true label; 10% of the pairs keep their human votes (calibration), the rest are hidden
and revealed only for the 10% of pairs each strategy routes. Final label accuracy against
the truth (tie = ½) for `auto` (the cross-fitted error model), routing by judge disagreement,
random routing and no routing; mean and 95% t-interval over `--seeds` seeds, and the paired
differences.

    python benchmarks/bench_judge.py [--pairs 1500] [--delay 0.2] [--seeds 5] [--skip-route]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))


def _prefkit(*args: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall s, CPU s of the command's process, result)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", "from prefkit.cli import main; main()", *args],
        capture_output=True, text=True, env=_env(), cwd=REPO,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, p


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _messages(pairs_file: Path) -> list[list[dict[str, str]]]:
    """The exact requests `judge run` sends (default template, both orders)."""
    from prefkit.io.canonical import load
    from prefkit.judge.run import conversation_text
    from prefkit.judge.templates import load_template
    from prefkit.schema import messages_text

    tmpl = load_template("pairwise")
    out = []
    for r in load(pairs_file).to_pylist():
        a, b = messages_text(r["response_a"]), messages_text(r["response_b"])
        for x, y in ((a, b), (b, a)):
            msgs = tmpl.render(prompt=conversation_text(r["prompt"]), response_a=x, response_b=y)
            out.append([{"role": role, "content": c} for role, c in msgs])
    return out


def throughput(n_pairs: int, delay: float, openai_calls: int) -> dict[str, Any]:
    import openai
    from tests.judge.conftest import start_server

    from prefkit.io import save
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pairs = save(
            simulate("clean", size=n_pairs, seed=0).tables[Kind.COMPARISONS], d / "p.parquet"
        )
        srv = start_server(d / "calls.log", "--delay", str(delay))
        try:
            args = ("judge", "run", str(pairs), str(d / "votes.parquet"), "--endpoint", srv.url,
                    "--model", "longer", "--concurrency", "32", "--cache", str(d / "cache"),
                    "--json")  # fmt: skip
            srv_cpu0 = _proc_cpu(srv.proc.pid)
            cold_s, cold_cpu, p = _prefkit(*args)
            srv_cpu = _proc_cpu(srv.proc.pid) - srv_cpu0
            assert p.returncode == 0, p.stderr
            cold = json.loads(p.stdout)
            sent_cold = len(srv.requests())
            warm_s, warm_cpu, p = _prefkit(*args)
            assert p.returncode == 0, p.stderr
            warm = json.loads(p.stdout)
            sent_warm = len(srv.requests()) - sent_cold
            msgs = _messages(pairs)
            client = openai.OpenAI(base_url=srv.url, api_key="bench", max_retries=0)
            t0 = time.perf_counter()
            for m in msgs[:openai_calls]:
                client.chat.completions.create(model="longer", messages=m, temperature=0)  # type: ignore[arg-type]
            seq_s = time.perf_counter() - t0

            async def run_async() -> float:
                ac = openai.AsyncOpenAI(base_url=srv.url, api_key="bench", max_retries=0)
                sem = asyncio.Semaphore(32)

                async def one(m: list[dict[str, str]]) -> None:
                    async with sem:
                        await ac.chat.completions.create(model="longer", messages=m, temperature=0)  # type: ignore[arg-type]

                t = time.perf_counter()
                await asyncio.gather(*(one(m) for m in msgs))
                el = time.perf_counter() - t
                await ac.close()
                return el

            async_s = asyncio.run(run_async())
        finally:
            srv.stop()
    calls = 2 * n_pairs
    return {
        "pairs": n_pairs,
        "calls": calls,
        "server_delay_s": delay,
        "judge_run_cold": {
            "wall_s": round(cold_s, 2),
            "requests_sent": sent_cold,
            "calls_per_s_whole_command": round(sent_cold / cold_s, 1),
            "calls_per_s_in_run": cold["calls"]["calls_per_s"],
            "retries": cold["calls"]["retries"],
            "client_cpu_s": round(cold_cpu, 2),
            "client_cpu_ms_per_call": round(1000 * cold_cpu / max(sent_cold, 1), 2),
            "server_cpu_ms_per_call": round(1000 * srv_cpu / max(sent_cold, 1), 2),
            # an idle 2-core machine: each process is one event loop (one core at most),
            # both share two cores, and 32 requests in flight cap it at 32 / delay
            "capacity_calls_per_s_if_idle": round(
                min(
                    max(sent_cold, 1) / max(cold_cpu, 1e-9),
                    max(sent_cold, 1) / max(srv_cpu, 1e-9),
                    2.0 * max(sent_cold, 1) / max(cold_cpu + srv_cpu, 1e-9),
                    32 / delay,
                ),
                1,
            ),
        },
        "judge_run_warm": {
            "wall_s": round(warm_s, 2),
            "client_cpu_s": round(warm_cpu, 2),
            "requests_sent": sent_warm,
            "cached": warm["calls"]["cached"],
        },
        "openai_sequential": {
            "calls": openai_calls,
            "wall_s": round(seq_s, 2),
            "calls_per_s": round(openai_calls / seq_s, 2),
        },
        "openai_async_32": {
            "calls": calls,
            "wall_s": round(async_s, 2),
            "calls_per_s": round(calls / async_s, 1),
        },
        "ratio_vs_sequential_openai": round((sent_cold / cold_s) / (openai_calls / seq_s), 1),
        "theoretical_max_calls_per_s": round(32 / delay, 1),
    }


def routing(seeds: int, size: int) -> dict[str, Any]:
    from scipy import stats

    from prefkit.judge.audit import collect
    from prefkit.judge.route import evaluate_routing
    from prefkit.schema import Kind
    from prefkit.simulate import simulate
    from prefkit.simulate.judges import true_labels

    rows = []
    for seed in range(seeds):
        t = simulate("judges", size=size, seed=100 + seed, human_share=1.0).tables[Kind.COMPARISONS]
        truth = true_labels(t, collect(t).pair_ids)
        r = evaluate_routing(t, truth, 0.1, 0.1, ("auto", "disagreement", "random"), seed)
        rows.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "auto_expected_accuracy"}),
              file=sys.stderr)  # fmt: skip

    def ci(x: np.ndarray) -> list[float]:
        h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        return [round(float(x.mean() - h), 4), round(float(x.mean() + h), 4)]

    out: dict[str, Any] = {"seeds": seeds, "rows_per_seed": size,
                           "pairs_per_seed": [r["pairs"] for r in rows]}  # fmt: skip
    for k in ("auto", "disagreement", "random", "no_routing", "human_majority_accuracy"):
        x = np.array([r[k] for r in rows])
        out[k] = {"mean": round(float(x.mean()), 4), "ci95": ci(x)}
    a = np.array([r["auto"] for r in rows])
    for k in ("disagreement", "random", "no_routing"):
        d = a - np.array([r[k] for r in rows])
        out[f"auto_minus_{k}"] = {"mean": round(float(d.mean()), 4), "ci95": ci(d),
                                   "per_seed": [round(float(x), 4) for x in d]}  # fmt: skip
    out["auto_strategy_used"] = sorted({r["auto_strategy_used"] for r in rows})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1500)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--openai-calls", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--route-size", type=int, default=12_000)
    ap.add_argument("--skip-route", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args()
    res: dict[str, Any] = {"load_before": os.getloadavg()}
    if not a.skip_throughput:
        res["throughput"] = throughput(a.pairs, a.delay, a.openai_calls)
    if not a.skip_route:
        res["routing"] = routing(a.seeds, a.route_size)
    res["load_after"] = os.getloadavg()
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
