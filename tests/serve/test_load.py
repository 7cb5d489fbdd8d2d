"""Load and faults on a real server process (smaller than benchmarks/bench_serve.py):
concurrent clients with retried and doubled idempotency keys → exactly one vote per key;
SIGKILL mid-load and restart → every acknowledged vote is there, re-sends count once."""

from __future__ import annotations

import pytest
from benchmarks.bench_serve import bench

pytestmark = pytest.mark.slow


def test_concurrent_votes_exactly_once_and_kill9(db_url: str) -> None:
    r = bench(db_url, n_votes=400, n_clients=10, kill_votes=3000, seed=1)
    assert r["db_votes"] == 400 and r["distinct_keys"] == 400
    assert r["lost"] == 0 and r["errors"] == 0 and r["retry_mismatches"] == 0
    assert r["retries"] > 0 and r["concurrent_duplicates"] > 0  # the retry paths ran
    k = r["kill"]
    assert k["acked_before_kill"] > 0, k  # the kill happened mid-load
    assert k["attempted"] < 3000, k
    assert k["present_after_restart"] == k["acked_before_kill"] and k["lost_acked"] == 0
    assert k["rows_after_resend"] == k["attempted"] and k["duplicate_keys"] == 0
    assert k["resend_mismatches"] == 0
