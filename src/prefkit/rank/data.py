"""Battles and count tables: canonical comparisons -> (item_a, item_b, outcome, weight) ->
aggregated (i, j, wins, losses, ties) counts, which every rank model is fitted on.

Conventions (docs/rank.md): `both_bad` is a tie (as in Chatbot Arena's ``tie (bothbad)``),
self-battles (the same item on both sides) carry no information about the ranking and are
skipped and counted, rows without item names are skipped and counted (all of them missing is
an error: rank needs model identities).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

WIN_A, WIN_B, TIE = 0, 1, 2
OUTCOME_CODE = {"a": WIN_A, "b": WIN_B, "tie": TIE, "both_bad": TIE}


class RankInputError(ValueError):
    """Input that cannot be ranked; the message names the row/field and the reason."""


@dataclass(frozen=True)
class Battles:
    """One row per battle: item indices `a`, `b` into `items`, outcome 0 = a wins, 1 = b
    wins, 2 = tie, and a weight (1 unless weighted votes)."""

    items: tuple[str, ...]
    a: I64
    b: I64
    outcome: I64
    weight: F64
    rows: I64  # row index in the source table of each battle
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.a.size)


def battles(
    item_a: Sequence[Any] | NDArray[Any],
    item_b: Sequence[Any] | NDArray[Any],
    outcome: Sequence[Any] | NDArray[Any],
    weight: Sequence[float] | F64 | None = None,
    items: Sequence[str] | None = None,
) -> Battles:
    """Battles from parallel arrays. `outcome`: a/b/tie/both_bad strings (or 0/1/2 codes).

    Self-battles and rows with a missing item are skipped and counted in `skipped`; an
    unknown outcome value or a bad weight raises `RankInputError` naming the row."""
    xa = np.asarray(item_a, dtype=object)
    xb = np.asarray(item_b, dtype=object)
    n = xa.size
    if xb.size != n or len(outcome) != n:
        raise RankInputError("item_a, item_b and outcome must have the same length")
    out = np.asarray(outcome, dtype=object)
    codes = np.full(n, -1, dtype=np.int64)
    for key, code in OUTCOME_CODE.items():
        codes[out == key] = code
    for code in (WIN_A, WIN_B, TIE):
        codes[out == code] = code
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        raise _unknown_outcome(int(bad[0]), out[int(bad[0])], bad.size)
    w = _weights(weight, n)
    missing = np.array([x is None for x in xa]) | np.array([x is None for x in xb])
    same = ~missing & (xa == xb)
    keep = ~missing & ~same
    rows = np.flatnonzero(keep).astype(np.int64)
    ka, kb = xa[keep].astype(str), xb[keep].astype(str)
    if items is None:
        names = np.unique(np.concatenate([ka, kb]))
        item_list = tuple(str(s) for s in names.tolist())
        ia = np.searchsorted(names, ka).astype(np.int64)
        ib = np.searchsorted(names, kb).astype(np.int64)
    else:
        item_list = tuple(items)
        index = {s: k for k, s in enumerate(item_list)}
        try:
            ia = np.fromiter((index[s] for s in ka.tolist()), np.int64, ka.size)
            ib = np.fromiter((index[s] for s in kb.tolist()), np.int64, kb.size)
        except KeyError as e:
            raise RankInputError(f"item {e.args[0]!r} is not in the given items") from None
    return Battles(item_list, ia, ib, codes[keep], w[keep], rows, _skipped(missing, same))


def _skipped(missing: NDArray[np.bool_], same: NDArray[np.bool_]) -> dict[str, int]:
    skipped = {}
    if int(missing.sum()):
        skipped["missing_item"] = int(missing.sum())
    if int(same.sum()):
        skipped["self_battle"] = int(same.sum())
    return skipped


def _unknown_outcome(row: int, value: Any, count: int) -> RankInputError:
    return RankInputError(
        f"row {row}, field 'outcome': unknown value {value!r} ({count} such rows); "
        "expected a, b, tie or both_bad"
    )


def _weights(weight: Sequence[float] | F64 | None, n: int) -> F64:
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.size != n:
        raise RankInputError("weight must have one value per battle")
    badw = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if badw.size:
        r = int(badw[0])
        raise RankInputError(
            f"row {r}, field 'weight': {w[r]!r} is not a finite weight >= 0 ({badw.size} such rows)"
        )
    return w


def battles_from_table(table: pa.Table, weight_key: str | None = None) -> Battles:
    """Battles from a canonical comparisons table (`model_a`, `model_b`, `outcome`).

    `weight_key`: take each battle's weight from `meta[weight_key]` (a number)."""
    for col in ("model_a", "model_b", "outcome"):
        if col not in table.column_names:
            raise RankInputError(f"column {col!r} missing: rank needs canonical comparisons")
    ma, mb = table.column("model_a"), table.column("model_b")
    if table.num_rows and ma.null_count == table.num_rows and mb.null_count == table.num_rows:
        raise RankInputError(
            "field 'model_a'/'model_b': every row is null (text-only comparisons): rank needs "
            "the models' names; to combine several annotators' votes per pair use "
            "'prefkit aggregate'"
        )
    nulls = table.column("outcome").null_count
    if nulls:
        first = int(pc.index(pc.is_null(table.column("outcome")), True).as_py())
        raise RankInputError(f"row {first}, field 'outcome': null ({nulls} such rows)")
    n = table.num_rows
    weight = _weights(None if weight_key is None else _meta_weights(table, weight_key), n)
    # column operations only (Arrow compute): a million battles convert in well under a second
    out = table.column("outcome")
    idx = pc.index_in(out, value_set=pa.array(list(OUTCOME_CODE), pa.string()))
    if idx.null_count:
        first = int(pc.index(pc.is_null(idx), True).as_py())
        raise _unknown_outcome(first, out[first].as_py(), idx.null_count)
    code_of = np.array(list(OUTCOME_CODE.values()), dtype=np.int64)
    codes = code_of[np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)]
    ma, mb = ma.cast(pa.string()), mb.cast(pa.string())
    missing = np.asarray(pc.or_(pc.is_null(ma), pc.is_null(mb)).to_numpy(zero_copy_only=False))
    same = np.asarray(pc.fill_null(pc.equal(ma, mb), False).to_numpy(zero_copy_only=False))
    keep = ~missing & ~same
    keep_arr = pa.array(keep)
    ka, kb = pc.filter(ma, keep_arr), pc.filter(mb, keep_arr)
    names = pc.unique(pa.chunked_array(ka.chunks + kb.chunks, pa.string()))
    names = names.take(pc.sort_indices(names))
    ia = np.asarray(pc.index_in(ka, value_set=names).to_numpy(zero_copy_only=False), np.int64)
    ib = np.asarray(pc.index_in(kb, value_set=names).to_numpy(zero_copy_only=False), np.int64)
    rows = np.flatnonzero(keep).astype(np.int64)
    return Battles(
        tuple(names.to_pylist()), ia, ib, codes[keep], weight[keep], rows,
        _skipped(missing, same),
    )  # fmt: skip


def _meta_weights(table: pa.Table, key: str) -> F64:
    if "meta" not in table.column_names:
        raise RankInputError(f"field 'meta': no meta column to read weight {key!r} from")
    out = np.empty(table.num_rows)
    for r, m in enumerate(table.column("meta").to_pylist()):
        d = dict(m) if m else {}
        if key not in d:
            raise RankInputError(f"row {r}, field 'meta.{key}': missing weight")
        try:
            out[r] = float(d[key])
        except (TypeError, ValueError):
            raise RankInputError(
                f"row {r}, field 'meta.{key}': {d[key]!r} is not a number"
            ) from None
    return out


@dataclass(frozen=True)
class Counts:
    """Battles aggregated per unordered pair (i < j): weighted wins of i, wins of j, ties;
    `n` battle counts and `w2` sums of squared weights per outcome (columns a, b, tie) for
    the bootstrap and sandwich estimators."""

    items: tuple[str, ...]
    i: I64
    j: I64
    wins: F64  # i beat j (weighted)
    losses: F64  # j beat i
    ties: F64
    n: NDArray[np.int64]  # (pairs, 3) battle counts: i wins, j wins, tie
    w2: F64  # (pairs, 3) sums of squared weights

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_battles(self) -> int:
        return int(self.n.sum())


def aggregate(b: Battles) -> Counts:
    """Aggregate battles to per-pair counts: one sort of a packed pair key (O(n log n)), or,
    when the items x items table is no larger than a few times the battles, counting straight
    into it (O(n + items^2), no sort)."""
    ones = np.ones(b.a.size)
    return aggregate_grouped(b.items, b.a, b.b, b.outcome, ones, b.weight, b.weight**2)


def aggregate_grouped(
    items: tuple[str, ...], a: I64, b: I64, outcome: I64, count: F64, wsum: F64, w2sum: F64
) -> Counts:
    """`aggregate` over rows that each stand for `count` battles (weights summing to `wsum`,
    squared weights to `w2sum`): single battles, or battles already grouped by
    (item_a, item_b, outcome) as the Ray engine counts them."""
    k = len(items)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    swap = a > b
    # outcome relative to (lo, hi): 0 = lo wins, 1 = hi wins, 2 = tie
    rel = np.where(swap & (outcome != TIE), 1 - outcome, outcome)
    key = lo * k + hi
    if k * k <= max(4 * key.size, 1 << 16):
        cell = key * 3 + rel
        size = 3 * k * k
        n_all = np.bincount(cell, weights=count, minlength=size).reshape(k * k, 3)
        uniq = np.flatnonzero(n_all.sum(axis=1))
        n = n_all[uniq]
        sw = np.bincount(cell, weights=wsum, minlength=size).reshape(k * k, 3)[uniq]
        w2 = np.bincount(cell, weights=w2sum, minlength=size).reshape(k * k, 3)[uniq]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
        p = uniq.size
        cell = inv * 3 + rel
        n = np.bincount(cell, weights=count, minlength=3 * p).reshape(p, 3)
        sw = np.bincount(cell, weights=wsum, minlength=3 * p).reshape(p, 3)
        w2 = np.bincount(cell, weights=w2sum, minlength=3 * p).reshape(p, 3)
    wsum_p: F64 = np.asarray(sw, np.float64)
    return Counts(
        items,
        (uniq // k).astype(np.int64),
        (uniq % k).astype(np.int64),
        wsum_p[:, 0].copy(),
        wsum_p[:, 1].copy(),
        wsum_p[:, 2].copy(),
        np.rint(n).astype(np.int64),
        np.asarray(w2, np.float64),
    )


BATTLE_KEYS = ("model_a", "model_b", "outcome")


def count_batch(batch: pa.Table) -> pa.Table:
    """Partial battle counts of one batch of canonical comparisons: one row per
    (model_a, model_b, outcome) with its number of rows `n` (nulls kept as groups). The
    per-batch function of rank's counting (`prefkit.engine.map_batches`)."""
    cols = {k: batch.column(k).cast(pa.string()) for k in BATTLE_KEYS}
    t = pa.table(cols)
    g = t.group_by(list(BATTLE_KEYS), use_threads=False).aggregate([([], "count_all")])
    return g.rename_columns([*BATTLE_KEYS, "n"])


@dataclass(frozen=True)
class Counted:
    """Battle counts built from grouped rows (no per-battle arrays): the counts, the number
    of battles and what was skipped."""

    counts: Counts
    battles: int
    skipped: dict[str, int]


def counts_from_partials(parts: pa.Table) -> Counted:
    """Combine `count_batch` outputs into `Counts`, with the checks of `battles_from_table`
    (errors name the field, the value and how many rows hold it; there is no row number
    since rows were grouped)."""
    if parts.num_rows:
        g = parts.group_by(list(BATTLE_KEYS), use_threads=False).aggregate([("n", "sum")])
        g = g.rename_columns([*BATTLE_KEYS, "n"])
    else:
        g = pa.table(
            {k: pa.array([], pa.string()) for k in BATTLE_KEYS} | {"n": pa.array([], pa.int64())}
        )
    n = np.asarray(g.column("n").to_numpy(zero_copy_only=False), dtype=np.int64)
    total = int(n.sum())
    ma, mb, out = (g.column(k).combine_chunks() for k in BATTLE_KEYS)
    if total and int(n[np.asarray(pc.and_(pc.is_null(ma), pc.is_null(mb)))].sum()) == total:
        raise RankInputError(
            "field 'model_a'/'model_b': every row is null (text-only comparisons): rank needs "
            "the models' names; to combine several annotators' votes per pair use "
            "'prefkit aggregate'"
        )
    null_out = np.asarray(pc.is_null(out))
    if null_out.any():
        raise RankInputError(f"field 'outcome': null ({int(n[null_out].sum())} such rows)")
    idx = pc.index_in(out, value_set=pa.array(list(OUTCOME_CODE), pa.string()))
    if idx.null_count:
        badm = np.asarray(pc.is_null(idx))
        first = out[int(np.flatnonzero(badm)[0])].as_py()
        raise RankInputError(
            f"field 'outcome': unknown value {first!r} ({int(n[badm].sum())} such rows); "
            "expected a, b, tie or both_bad"
        )
    code_of = np.array(list(OUTCOME_CODE.values()), dtype=np.int64)
    codes = code_of[np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)]
    missing = np.asarray(pc.or_(pc.is_null(ma), pc.is_null(mb)).to_numpy(zero_copy_only=False))
    same = np.asarray(pc.fill_null(pc.equal(ma, mb), False).to_numpy(zero_copy_only=False))
    keep = ~missing & ~same
    keep_arr = pa.array(keep)
    ka, kb = pc.filter(ma, keep_arr), pc.filter(mb, keep_arr)
    names = pc.unique(pa.concat_arrays([ka, kb]))
    names = names.take(pc.sort_indices(names))
    ia = np.asarray(pc.index_in(ka, value_set=names).to_numpy(zero_copy_only=False), np.int64)
    ib = np.asarray(pc.index_in(kb, value_set=names).to_numpy(zero_copy_only=False), np.int64)
    cnt = n[keep].astype(np.float64)
    items = tuple(names.to_pylist())
    counts = aggregate_grouped(items, ia, ib, codes[keep], cnt, cnt, cnt)
    skipped = {}
    if int(n[missing].sum()):
        skipped["missing_item"] = int(n[missing].sum())
    if int(n[same].sum()):
        skipped["self_battle"] = int(n[same].sum())
    return Counted(counts, int(cnt.sum()), skipped)


def record(c: Counts) -> tuple[F64, F64, F64, NDArray[np.int64]]:
    """Per item: weighted wins, losses, ties and the number of battles."""
    k = c.n_items
    wins = np.asarray(np.bincount(c.i, c.wins, k) + np.bincount(c.j, c.losses, k), np.float64)
    losses = np.asarray(np.bincount(c.i, c.losses, k) + np.bincount(c.j, c.wins, k), np.float64)
    ties = np.asarray(np.bincount(c.i, c.ties, k) + np.bincount(c.j, c.ties, k), np.float64)
    tot = c.n.sum(axis=1).astype(np.float64)
    n = (np.bincount(c.i, tot, k) + np.bincount(c.j, tot, k)).astype(np.int64)
    return wins, losses, ties, n
