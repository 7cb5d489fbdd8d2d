"""`prefkit align` on bad input: clear one-line messages, counted skips, exit codes; and a
short end-to-end run (build stage pairs → train → eval) on PandaLM with ties."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trl  # noqa: F401  # the [train] extra: missing, these tests fail (never skip)
from typer.testing import CliRunner

from prefkit.cli import app
from tests.align import _tiny
from tests.raw import hh_harmless_counts

pytestmark = [pytest.mark.train]


def _jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return _tiny.hh_rows(40)


@pytest.fixture(scope="module")
def base(rows: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny.checkpoint(_tiny.texts_of(rows), tmp_path_factory.mktemp("align") / "base")


@dataclass
class Result:
    exit_code: int
    output: str
    stdout: str


def _run(*args: str) -> Result:
    """Invoke like `prefkit.cli.main` does: user-facing errors become (exit code, message)."""
    from prefkit._cli import CLIError
    from prefkit.io.base import InputError

    r = CliRunner().invoke(app, list(args))
    exc = r.exception
    if isinstance(exc, CLIError):
        return Result(exc.code, r.output + str(exc), r.stdout)
    if isinstance(exc, InputError):
        return Result(1, r.output + str(exc), r.stdout)
    if exc is not None and not isinstance(exc, SystemExit):
        raise exc
    return Result(r.exit_code, r.output, r.stdout)


def test_the_installed_command_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("prefkit")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    missing = tmp_path / "missing.jsonl"
    p = subprocess.run(
        [str(exe), "align", "train", str(missing), "--base", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 1
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "missing.jsonl" in lines[0] and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("command", "blocked"),
    [
        ("train", "torch"),
        ("train", "transformers"),
        ("train", "trl"),
        ("eval", "torch"),
        ("losses", "torch"),
    ],
)
def test_missing_train_extra_names_the_pip_command(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path, command: str, blocked: str
) -> None:
    """A user without the `[train]` extra: the real CLI in a subprocess where the package
    cannot be imported gets one `error:` line naming it and `pip install 'prefkit[train]'`,
    exit 1, no traceback, nothing written (the same arguments train fine with the extra)."""
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    out = tmp_path / "o"
    args = {
        "train": ["train", str(data), "--base", str(base), "--out", str(out), "--max-steps", "1"],
        "eval": ["eval", str(data), "--policy", str(base), "--ref", str(base)],
        "losses": ["losses"],
    }[command]
    code = (
        "import sys; sys.modules[{m!r}] = None\n"
        "sys.argv = ['prefkit', 'align'] + {a!r}\n"
        "from prefkit.cli import main; main()\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code.format(m=blocked, a=args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    errors = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        f"error: prefkit align {command} needs {blocked} (not installed); install the [train] "
        "extra: pip install 'prefkit[train]'"
    ]
    assert not out.exists()


def test_empty_and_identical_pairs_are_counted_and_skipped(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    bad = [dict(r) for r in rows[:12]]
    bad[0]["chosen"] = "   "
    bad[1]["rejected"] = ""
    bad[2]["rejected"] = bad[2]["chosen"]
    bad[3]["rejected"] = "  " + bad[3]["chosen"].upper() + " "  # same after normalization
    data = _jsonl(bad, tmp_path / "bad.jsonl")
    out = tmp_path / "out"
    r = _run(*r_args(data, base, out))
    assert r.exit_code == 0, r.output
    assert "skipped 2 pairs: empty_response" in r.output
    assert "identical_responses" in r.output
    card = json.loads((out / "align.json").read_text())
    assert card["data"]["skipped"] == {"empty_response": 2, "identical_responses": 2}
    assert card["data"]["pairs"] == 8
    assert card["training"]["steps"] == 2


def r_args(data: Path, base: Path, out: Path) -> list[str]:
    return ["align", "train", str(data), "--base", str(base), "--out", str(out)] + [
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "64",
        "--json",
    ]


def test_too_long_pairs_are_truncated_and_counted(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    out = tmp_path / "out"
    r = _run(*r_args(data, base, out))
    assert r.exit_code == 0, r.output
    t = json.loads((out / "align.json").read_text())["truncation"]["train"]
    assert t["pairs"] == 8 and t["prompt_truncated"] + t["response_truncated"] > 0
    assert "truncated to --max-length 64" in r.output


def test_every_pair_bad_exits_1(rows: list[dict[str, Any]], base: Path, tmp_path: Path) -> None:
    same = [{"prompt": "p", "chosen": "same", "rejected": "same"}] * 3
    data = _jsonl(same, tmp_path / "same.jsonl")
    r = _run(*r_args(data, base, tmp_path / "o"))
    assert r.exit_code == 1
    assert "no trainable pairs" in r.output and "identical_responses" in r.output


def test_missing_or_bad_models_and_usage_errors(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    r = _run(*r_args(data, base, tmp_path / "o"), "--ref", str(tmp_path / "nope"))
    assert r.exit_code == 1 and "--ref" in r.output and "not a model directory" in r.output
    r = _run(*r_args(data, tmp_path / "nobase", tmp_path / "o"))
    assert r.exit_code == 1 and "nobase" in r.output
    r = _run(*r_args(data, base, tmp_path / "o"), "--loss", "dpoo")
    assert r.exit_code == 2 and "unknown loss 'dpoo'" in r.output
    r = _run(*r_args(data, base, tmp_path / "o"), "--loss", "simpo", "--param", "gama=1")
    assert r.exit_code == 2 and "no parameter 'gama'" in r.output
    r = _run(*r_args(data, base, tmp_path / "o"), "--loss", "plackett_luce")
    assert r.exit_code == 2 and "listwise" in r.output
    r = _run(*r_args(data, base, tmp_path / "o"), "--batching", "magic")
    assert r.exit_code == 2
    r = _run("align", "eval", str(data), "--policy", str(base))
    assert r.exit_code == 2 and "needs --ref" in r.output
    r = _run("align", "train", str(tmp_path / "missing.jsonl"), "--base", str(base))
    assert r.exit_code == 1 and "missing.jsonl" in r.output
    noprompt = _jsonl([{"chosen": "a", "rejected": "b"}], tmp_path / "np.jsonl")
    r = _run("align", "train", str(noprompt), "--base", str(base))
    assert r.exit_code == 1 and "prompt" in r.output


def test_library_refuses_a_missing_reference() -> None:
    import torch

    from prefkit.align.losses import LOSSES, LossInputError, PairLogps

    x = torch.zeros(2)
    with pytest.raises(LossInputError, match="needs reference log-probs"):
        LOSSES["ipo"](PairLogps(x, x, chosen_tokens=x + 1, rejected_tokens=x + 1))


def test_build_pairs_with_ties_train_and_eval_tie_aware(tmp_path: Path) -> None:
    """PandaLM comparisons → `prefkit pairs --ties keep --to trl` → tie-aware training →
    eval: every stage's real output, a few steps."""
    from prefkit.io.canonical import save
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    table = read(_tiny.PANDALM).tables[Kind.COMPARISONS].slice(0, 600)
    src = save(table, tmp_path / "in.parquet", Kind.COMPARISONS)
    pairs = tmp_path / "pairs.jsonl"
    r = _run("pairs", str(src), str(pairs), "--ties", "keep", "--to", "trl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in pairs.read_text().splitlines()]
    assert any(x["tie"] for x in rows) and not all(x["tie"] for x in rows)
    base = _tiny.checkpoint(_tiny.texts_of(rows), tmp_path / "base")
    out = tmp_path / "pol"
    r = _run(*r_args(pairs, base, out), "--loss", "dpo_davidson", "--param", "nu=0.5")
    assert r.exit_code == 0, r.output
    card = json.loads((out / "align.json").read_text())
    assert card["config"]["params"] == {"nu": 0.5}
    few = [x for x in rows if x["tie"]][:10] + [x for x in rows if not x["tie"]][:30]
    held = _jsonl(few, tmp_path / "held.jsonl")
    r = _run("align", "eval", str(held), "--policy", str(out), "--ref", str(base), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["pairs"] + sum(res["skipped"].values()) == 40 and 0 < res["ties"] <= 10
    for k in ("reward_accuracy", "ranking_accuracy_ref", "idealized_ranking_accuracy_ref"):
        assert 0 <= res[k] <= 1
    # non-tie pairs: the idealized accuracy with unanimous labels is at least the ranking one
    assert res["idealized_ranking_accuracy_ref"] >= res["ranking_accuracy_ref"]


@pytest.mark.parametrize(
    ("extra", "needs"),
    [
        (["--lora"], "adapter_config.json"),
        (["--loss", "kto"], "model.safetensors"),
        (["--loss", "simpo", "--batching", "packed"], "model.safetensors"),
    ],
)
def test_lora_kto_and_reference_free_runs(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path, extra: list[str], needs: str
) -> None:
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    out = tmp_path / "o"
    r = _run(*r_args(data, base, out), *extra)
    assert r.exit_code == 0, r.output
    card = json.loads((out / "align.json").read_text())
    assert card["training"]["steps"] == 2 and (out / needs).exists()
    losses = card["training"]["losses"]
    assert len(losses) == 2 and all(x == x for x in losses)  # logged every step, not NaN


def test_raw_comparisons_go_through_io_and_build(base: Path, tmp_path: Path) -> None:
    """The HH file itself: io reads it, the build stage makes the pairs (a few HH pairs have an
    empty response: counted), the tiny tokenizer has no chat template: rendered as text."""
    out = tmp_path / "o"
    r = _run(*r_args(_tiny.HH_HARMLESS, base, out))
    assert r.exit_code == 0, r.output
    assert "rendered as plain text" in r.output
    card = json.loads((out / "align.json").read_text())
    raw = hh_harmless_counts()  # plain gzip + json over the published file
    assert raw.empty_response > 0
    assert card["data"]["skipped"] == {"empty_response": raw.empty_response}
    assert (
        card["data"]["pairs"] == raw.rows - raw.empty_response
        and "hh-rlhf" in card["data"]["source"]
    )


def _first_loss(data: Path, base: Path, out: Path, *extra: str) -> dict[str, Any]:
    """One training step over all 8 pairs in one batch; the card of the run."""
    r = _run(
        "align", "train", str(data), "--base", str(base), "--out", str(out),
        "--batch-size", "8", "--max-steps", "1", "--max-length", "64", *extra,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    card: dict[str, Any] = json.loads((out / "align.json").read_text())
    assert card["training"]["steps"] == 1
    return card


def test_use_weights_and_use_margins_in_the_loss(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    """At the first step the policy is its frozen reference, so every log-ratio is 0 and the
    DPO loss of a pair is softplus(margin) (log 2 without margins), times its weight: the
    logged loss of one batch holding all pairs is their mean, in closed form."""
    w = [0.5, 1.0, 1.5, 2.0, 0.25, 0.75, 1.25, 3.0]
    m = [0.0, 0.5, 1.0, 2.0, -1.0, 0.25, 1.5, 3.0]
    data = _jsonl(
        [{**r, "weight": wi, "margin": mi} for r, wi, mi in zip(rows[:8], w, m, strict=True)],
        tmp_path / "wm.jsonl",
    )

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    expected = {
        (): math.log(2),
        ("--use-weights",): sum(w) / 8 * math.log(2),
        ("--use-margins",): sum(softplus(x) for x in m) / 8,
        ("--use-weights", "--use-margins"): sum(a * softplus(b) for a, b in zip(w, m, strict=True))
        / 8,
    }
    for k, (flags, want) in enumerate(expected.items()):
        card = _first_loss(data, base, tmp_path / f"o{k}", *flags)
        assert card["config"]["use_weights"] == ("--use-weights" in flags)
        assert card["config"]["use_margins"] == ("--use-margins" in flags)
        assert card["training"]["losses"][0] == pytest.approx(want, abs=2e-4), flags


def test_beta_sets_the_ipo_target(rows: list[dict[str, Any]], base: Path, tmp_path: Path) -> None:
    """IPO's loss is (d - 1/(2β))²; at the first step d = 0, so the loss is 1/(4β²)."""
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    for k, beta in enumerate((0.5, 0.25)):
        card = _first_loss(data, base, tmp_path / f"o{k}", "--loss", "ipo", "--beta", str(beta))
        assert card["config"]["beta"] == beta
        assert card["training"]["losses"][0] == pytest.approx(1 / (4 * beta**2), rel=1e-4)


def test_pack_tokens_sets_the_row_budget(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    """`--batching packed --pack-tokens N` packs groups into rows of at most N tokens: a huge
    budget puts each batch of 4 pairs into one row (no padding at all), a budget of 1 token
    gives (almost) a row per pair; the losses are those of the unpacked layout."""
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    cards = {}
    for name, extra in {
        "one_row": ["--batching", "packed", "--pack-tokens", "100000"],
        "tight": ["--batching", "packed", "--pack-tokens", "1"],
        "shared": ["--batching", "shared"],
    }.items():
        out = tmp_path / name
        r = _run(*r_args(data, base, out), *extra)
        assert r.exit_code == 0, r.output
        cards[name] = json.loads((out / "align.json").read_text())
    lay = {k: c["training"]["layout"] for k, c in cards.items()}
    assert cards["one_row"]["config"]["pack_tokens"] == 100000
    assert lay["one_row"]["rows"] == 2 and lay["one_row"]["padding_share"] == 0.0  # 2 steps
    assert lay["shared"]["rows"] == 8  # one row per prompt
    assert 2 < lay["tight"]["rows"] <= 8
    assert (
        lay["one_row"]["real_tokens"] == lay["tight"]["real_tokens"] == lay["shared"]["real_tokens"]
    )
    assert lay["one_row"]["token_slots"] < lay["shared"]["token_slots"]
    for k in ("one_row", "tight"):
        assert cards[k]["training"]["losses"] == pytest.approx(
            cards["shared"]["training"]["losses"], abs=1e-3
        )


def test_eval_beta_scales_rewards_and_max_new_tokens_caps_generation(
    rows: list[dict[str, Any]], base: Path, tmp_path: Path
) -> None:
    """The implicit reward is β·log-ratio: the mean reward margin scales with `--beta`
    (accuracy does not); `--max-new-tokens` caps both models' greedy generations."""
    data = _jsonl(rows[:8], tmp_path / "d.jsonl")
    policy = tmp_path / "pol"
    r = _run(*r_args(data, base, policy))
    assert r.exit_code == 0, r.output
    res = {}
    for beta, cap in ((0.1, 3), (0.3, 6)):
        r = _run(
            "align", "eval", str(data), "--policy", str(policy), "--ref", str(base),
            "--beta", str(beta), "--rm", "length", "--n-generate", "2",
            "--max-new-tokens", str(cap), "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        res[beta] = json.loads(r.stdout.strip().splitlines()[-1])
        g = res[beta]["generation"]
        assert res[beta]["beta"] == beta and g["max_new_tokens"] == cap and g["prompts"] == 2
        assert 0 <= g["mean_length_policy"] <= cap and 0 <= g["mean_length_ref"] <= cap
    lo, hi = res[0.1], res[0.3]
    assert lo["reward_margin_mean"] != 0
    assert hi["reward_margin_mean"] == pytest.approx(3 * lo["reward_margin_mean"], rel=1e-9)
    assert hi["reward_accuracy"] == lo["reward_accuracy"]
    assert hi["generation"]["mean_length_ref"] > lo["generation"]["max_new_tokens"]
