"""The engine choice and the per-batch functions, without a Ray cluster: usage errors, grouped
battle counting against per-battle counting on real battles, batch-by-batch `rm score`
against scoring the whole table, unreadable shards with `--strict`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.engine import EngineError, map_batches, map_table, resolve
from prefkit.io.detect import read
from prefkit.schema import Kind

LLMFAO = "llmfao"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ) | (env or {})
    if env is None:
        e.pop("PREFKIT_ENGINE", None)
    return subprocess.run(
        [sys.executable, "-m", "prefkit.cli", *args], capture_output=True, text=True, env=e,
        timeout=300,
    )  # fmt: skip


def test_resolve_flag_env_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFKIT_ENGINE", raising=False)
    assert resolve(None) == "local"
    assert resolve("RAY") == "ray"
    monkeypatch.setenv("PREFKIT_ENGINE", "ray")
    assert resolve(None) == "ray" and resolve("local") == "local"
    with pytest.raises(EngineError, match="PREFKIT_ENGINE spark"):
        monkeypatch.setenv("PREFKIT_ENGINE", "spark")
        resolve(None)


def test_engine_usage_errors_exit_2_without_starting_ray(tmp_path: Path, data_dir: Path) -> None:
    src = _llmfao_file(data_dir)
    for args in (
        ["audit", str(src), "--engine", "spark"],
        ["rank", str(src), "--engine", "dask"],
        ["convert", str(src), str(tmp_path / "o.parquet"), "--engine", "x"],
        ["rm", "score", "length", str(src), str(tmp_path / "s.parquet"), "--engine", "y"],
    ):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "unknown engine" in r.stderr and "Traceback" not in r.stderr
    r = cli("rank", str(src), env={"PREFKIT_ENGINE": "spark"})
    assert r.returncode == 2 and "PREFKIT_ENGINE spark: unknown engine" in r.stderr
    # options that need every single battle are refused before Ray starts
    r = cli("rank", str(src), "--engine", "ray", "--by", "annotator")
    assert r.returncode == 2 and "--by" in r.stderr and "--engine local" in r.stderr
    r = cli("rank", str(src), "--engine", "ray", "--baselines", "--style-control")
    assert r.returncode == 2 and "--style-control, --baselines" in r.stderr
    r = cli(
        "rm", "score", "length", str(src), str(tmp_path / "j.parquet"), "--engine", "ray",
        "--judge", "http://127.0.0.1:9",
    )  # fmt: skip
    assert r.returncode == 2 and "--judge" in r.stderr
    assert not (tmp_path / "o.parquet").exists() and not (tmp_path / "j.parquet").exists()


def _llmfao_file(data_dir: Path) -> Path:
    return data_dir / LLMFAO / "llmfao.csv"


def test_grouped_counting_equals_per_battle_counting_on_llmfao(data_dir: Path) -> None:
    """Rank's counting as the Ray engine does it (partial group-bys per batch, combined) gives
    exactly the per-battle `aggregate` counts on the LLMFAO crowd battles, whatever the
    batching."""
    from prefkit.rank.data import aggregate, battles_from_table, count_batch, counts_from_partials

    table = read(_llmfao_file(data_dir)).tables[Kind.COMPARISONS]
    ref_b = battles_from_table(table)
    ref = aggregate(ref_b)
    for rows in (997, 1 << 14):
        got = counts_from_partials(map_table(table, count_batch, "local", batch_rows=rows))
        assert got.battles == len(ref_b) and got.skipped == ref_b.skipped
        assert got.counts.items == ref.items
        for name in ("i", "j", "wins", "losses", "ties", "n", "w2"):
            assert np.array_equal(getattr(got.counts, name), getattr(ref, name)), name
    # the sums are the battles of the raw file: every battle counted once
    assert int(ref.n.sum()) == len(ref_b) > 1000


def test_grouped_counting_errors_name_field_and_value() -> None:
    from prefkit.rank.data import RankInputError, count_batch, counts_from_partials

    t = pa.table(
        {
            "model_a": ["x", "y", "x", None],
            "model_b": ["y", "x", "x", "y"],
            "outcome": ["a", "win", "win", "b"],
        }
    )
    with pytest.raises(RankInputError, match=r"field 'outcome': unknown value 'win' \(2 such"):
        counts_from_partials(count_batch(t))
    t = t.set_column(2, "outcome", pa.array(["a", "b", "tie", "b"]))
    ok = counts_from_partials(count_batch(t))
    assert ok.battles == 2 and ok.skipped == {"missing_item": 1, "self_battle": 1}


def test_rm_score_batches_equal_whole_table_scoring(tmp_path: Path, data_dir: Path) -> None:
    """`rm score` batch by batch (canonical Parquet in, Parquet out, one batch in memory)
    writes the rewards that scoring every response at once gives."""
    from prefkit.io.canonical import save
    from prefkit.reward.models import LengthModel
    from prefkit.schema import messages_text

    table = read(data_dir / "pandalm_testset/data/testset-v1.json").tables[Kind.COMPARISONS]
    table = pa.concat_tables([table] * 12)  # > 2 batches of 16,384 rows
    src = tmp_path / "in.parquet"
    save(table, src)
    out = tmp_path / "scored.parquet"
    r = cli("rm", "score", "length", str(src), str(out), "--engine", "local")
    assert r.returncode == 0, r.stderr
    got = pq.read_table(out)
    assert got.num_rows == table.num_rows
    m = LengthModel()
    for side in ("a", "b"):
        texts = [messages_text(x) for x in table.column(f"response_{side}").to_pylist()]
        prompts = [messages_text(x) for x in table.column("prompt").to_pylist()]
        ref = m.score(prompts, texts)
        assert np.array_equal(np.asarray(got.column(f"reward_{side}")), ref)
    assert got.column("id").equals(table.column("id"))
    assert not any(c.startswith("_prefkit") for c in got.column_names)


def test_map_batches_local_runs_batch_by_batch(tmp_path: Path) -> None:
    """The local engine calls the function once per batch of at most `batch_rows` rows, over a
    table or Parquet files, rows in order."""
    t = pa.table({"x": np.arange(10_000)})
    pq.write_table(t.slice(0, 6000), tmp_path / "a.parquet")
    pq.write_table(t.slice(6000), tmp_path / "b.parquet")
    seen: list[int] = []

    def double(b: pa.Table) -> pa.Table:
        seen.append(b.num_rows)
        return pa.table({"y": pa.compute.multiply(b.column("x"), 2)})

    for source in (t, [tmp_path / "a.parquet", tmp_path / "b.parquet"]):
        seen.clear()
        out = pa.concat_tables(list(map_batches(source, double, "local", batch_rows=2500)))
        assert np.array_equal(np.asarray(out.column("y")), 2 * np.arange(10_000))
        assert max(seen) <= 2500 and sum(seen) == 10_000


def test_unreadable_shard_is_a_reject_and_strict_stops(tmp_path: Path) -> None:
    from prefkit.io.canonical import save
    from prefkit.simulate import simulate

    sim = simulate("arena", size=2_000, seed=2).tables[Kind.COMPARISONS]
    folder = tmp_path / "hub"
    folder.mkdir()
    save(sim.slice(0, 1000), folder / "train-00000-of-00002.parquet")
    (folder / "train-00001-of-00002.parquet").write_bytes(b"PAR1 not really")
    r = cli("convert", str(folder), str(tmp_path / "o.parquet"))
    assert r.returncode == 0, r.stderr
    assert "train-00001-of-00002.parquet" in (tmp_path / "o.parquet.rejects.jsonl").read_text()
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 1000
    r = cli("convert", str(folder), str(tmp_path / "s.parquet"), "--strict")
    assert r.returncode == 1 and "train-00001-of-00002.parquet" in r.stderr
    assert "Traceback" not in r.stderr
