"""`--engine ray` against `--engine local` on one real local Ray cluster (tests/scale/conftest.py):
the same tables and findings on HH-RLHF harmless, PandaLM and 200k simulated rows, a Ray
worker killed mid-run, an unreadable shard. All Ray tests live in this file so that
`pytest -n 2 --dist loadfile` starts one cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.engine import map_table
from prefkit.io.detect import read
from prefkit.schema import Kind

pytestmark = pytest.mark.slow

HH = "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"
PANDALM = "pandalm_testset/data/testset-v1.json"


def cli(*args: str, address: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PREFKIT_ENGINE", None)
    if address is not None:
        env["RAY_ADDRESS"] = address
    return subprocess.run(
        [sys.executable, "-m", "prefkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_audit_same_findings_on_hh_harmless(data_dir: Path, ray_address: str) -> None:
    """The whole audit with the row-wise work on Ray equals the local audit, row for row."""
    from prefkit.audit.run import run_audit

    table = read(data_dir / HH).tables[Kind.COMPARISONS]
    local = run_audit(table, engine="local")
    on_ray = run_audit(table, engine="ray")
    assert local.rows.num_rows > 0  # the audit finds something to compare
    assert local.rows.equals(on_ray.rows)
    assert json.dumps(local.summary, sort_keys=True) == json.dumps(on_ray.summary, sort_keys=True)


def test_audit_cli_engines_equal_on_pandalm(
    data_dir: Path, ray_address: str, tmp_path: Path
) -> None:
    """`prefkit audit --engine ray` joins the running cluster through RAY_ADDRESS; its
    findings.parquet and summary.json equal `--engine local`'s."""
    src = str(data_dir / PANDALM)
    r1 = cli("audit", src, "--out", str(tmp_path / "l"), "--engine", "local")
    assert r1.returncode == 0, r1.stderr
    r2 = cli("audit", src, "--out", str(tmp_path / "r"), "--engine", "ray", address=ray_address)
    assert r2.returncode == 0, r2.stderr
    fl = pq.read_table(tmp_path / "l" / "findings.parquet")
    fr = pq.read_table(tmp_path / "r" / "findings.parquet")
    assert fl.num_rows > 0 and fl.equals(fr)
    sl = json.loads((tmp_path / "l" / "summary.json").read_text())
    sr = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert sl == sr


def test_200k_simulated_rank_score_and_audit_rows(ray_address: str, tmp_path: Path) -> None:
    """200k simulated arena battles with text: `rank --json` and `rm score` (features model)
    give the same output on both engines, and so do the audit's row-wise arrays (text
    statistics, flags, MinHash signatures of the distinct texts)."""
    from prefkit.audit.frame import Frame
    from prefkit.audit.rowwise import TEXT_COLUMNS, row_stats, text_signatures
    from prefkit.simulate import simulate

    sim = simulate("arena", size=200_000, seed=3).tables[Kind.COMPARISONS]
    assert sim.num_rows == 200_000
    data = tmp_path / "arena.parquet"
    from prefkit.io.canonical import save

    save(sim, data)
    # rank: per-pair counting on Ray (partial group-bys per batch), fit local
    r1 = cli("rank", str(data), "--json", "--engine", "local")
    r2 = cli("rank", str(data), "--json", "--engine", "ray", address=ray_address)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert json.loads(r1.stdout) == json.loads(r2.stdout)
    assert json.loads(r2.stdout)["battles"] + sum(json.loads(r2.stdout)["skipped"].values()) == (
        200_000
    )
    # the audit's row-wise arrays
    rows = sim.select(list(TEXT_COLUMNS))
    assert map_table(rows, row_stats, "local").equals(map_table(rows, row_stats, "ray"))
    texts = pa.table({"text": Frame.of(sim.slice(0, 50_000)).texts})
    assert map_table(texts, text_signatures, "local").equals(
        map_table(texts, text_signatures, "ray")
    )
    # rm score, one model per Ray worker: a trained features model on 5k of the rows (kept
    # small for the test's time; tests/scale/test_engine.py checks the batch-by-batch scoring
    # against whole-table scoring, benchmarks/bench_scale.py scores 1M rows on both engines)
    model = tmp_path / "rm"
    small = tmp_path / "small.parquet"
    save(sim.slice(0, 5_000), small)
    r = cli("rm", "train", str(small), str(model), "--seed", "0")
    assert r.returncode == 0, r.stderr
    for name, src, n in ((str(model), small, 5_000),):
        o1, o2 = tmp_path / "s_local.parquet", tmp_path / "s_ray.parquet"
        r1 = cli("rm", "score", name, str(src), str(o1), "--engine", "local")
        r2 = cli("rm", "score", name, str(src), str(o2), "--engine", "ray", address=ray_address)
        assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
        t1, t2 = pq.read_table(o1), pq.read_table(o2)
        assert t1.num_rows == n and t1.equals(t2)
        assert t1.column("reward_a").null_count < n
        assert t1.column("id").equals(sim.column("id").slice(0, n))  # input order kept


def _killed_once(marker: Path, fn: object) -> object:
    """`fn` wrapped so that the first batch to run records its worker's pid and waits to be
    killed (the test kills that process with SIGKILL); retries run `fn` normally."""

    def call(batch: pa.Table) -> pa.Table:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return fn(batch)  # type: ignore[operator]
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(60)  # killed before this ends
        raise AssertionError("the worker was not killed")

    return call


def test_killed_worker_is_retried_and_output_is_the_same(ray_address: str, tmp_path: Path) -> None:
    """A Ray worker process killed with SIGKILL in the middle of rank's counting: Ray Data
    retries the task on another worker; the counts equal the local engine's."""
    from prefkit.rank.data import BATTLE_KEYS, count_batch, counts_from_partials
    from prefkit.simulate import simulate

    sim = simulate("arena", size=50_000, seed=5).tables[Kind.COMPARISONS].select(BATTLE_KEYS)
    marker = tmp_path / "pid"
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            if marker.exists() and marker.read_text():
                pid = int(marker.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    th = threading.Thread(target=killer)
    th.start()
    parts = map_table(sim, _killed_once(marker, count_batch), "ray", batch_rows=5_000)  # type: ignore[arg-type]
    th.join()
    assert killed, "no worker was killed"
    ray_counts = counts_from_partials(parts)
    local_counts = counts_from_partials(map_table(sim, count_batch, "local"))
    assert ray_counts.battles == local_counts.battles == 50_000 - sum(local_counts.skipped.values())
    for name in ("i", "j", "wins", "losses", "ties", "n", "w2"):
        assert np.array_equal(getattr(ray_counts.counts, name), getattr(local_counts.counts, name))


def test_unreadable_shard_goes_to_rejects_with_ray(ray_address: str, tmp_path: Path) -> None:
    """A hub folder with one corrupt shard read by Ray tasks: the other shards are converted,
    the rejects file names the bad one, and the table equals the local engine's."""
    from prefkit.io.canonical import save
    from prefkit.simulate import simulate

    sim = simulate("arena", size=4_000, seed=1).tables[Kind.COMPARISONS]
    folder = tmp_path / "hub" / "data"
    folder.mkdir(parents=True)
    for i in range(4):
        save(sim.slice(i * 1000, 1000), folder / f"train-{i:05d}-of-00004.parquet")
    bad = folder / "train-00002-of-00004.parquet"
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])  # truncated mid-file
    out = tmp_path / "ray.parquet"
    r = cli("convert", str(tmp_path / "hub"), str(out), "--engine", "ray", address=ray_address)
    assert r.returncode == 0, r.stderr
    rejects = [json.loads(x) for x in Path(f"{out}.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 1 and rejects[0]["file"].endswith("train-00002-of-00004.parquet")
    assert "not a readable Parquet file" in rejects[0]["reason"]
    got = pq.read_table(out)
    local = read(tmp_path / "hub")  # the local engine, in process
    assert [r.file for r in local.rejects] == [rejects[0]["file"]]
    assert got.num_rows == 3000 and got.equals(local.tables[Kind.COMPARISONS])
    kept = set(got.column("id").to_pylist())
    assert kept == set(sim.column("id").to_pylist()) - set(
        sim.slice(2000, 1000).column("id").to_pylist()
    )
