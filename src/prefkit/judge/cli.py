"""`prefkit judge run | audit | route` (see docs/judge.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from prefkit._cli import check_output, console, fail, print_json, report_rejects

judge_app = typer.Typer(
    help="LLM judges: label pairs with any OpenAI-compatible endpoint, audit judges against "
    "humans, route the hard pairs to people.",
    no_args_is_help=True,
)

MODES = ("pairwise", "rubric", "reference")


def _panel(path: Path) -> list[dict[str, Any]]:
    """Judges from a JSON or TOML file: a list (or `judges = [...]`) of tables with `model`
    and optionally `endpoint`, `api_key_env`, `price_in`, `price_out`, `template`."""
    import json
    import tomllib

    try:
        raw = path.read_text(encoding="utf-8")
        data: Any = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except FileNotFoundError:
        fail(f"--panel {path}: file not found")
    except (OSError, ValueError) as e:
        fail(f"--panel {path}: cannot read ({e})")
    if isinstance(data, dict):
        data = data.get("judges")
    if not isinstance(data, list) or not data:
        fail(f"--panel {path}: expected a list of judges (or judges = [...]) with a 'model' each")
    known = {"model", "endpoint", "api_key_env", "price_in", "price_out", "template"}
    for i, j in enumerate(data):
        if not isinstance(j, dict) or not isinstance(j.get("model"), str):
            fail(f"--panel {path}: judge {i + 1} needs a 'model' string")
        bad = sorted(set(j) - known)
        if bad:
            fail(f"--panel {path}: judge {i + 1}: unknown field(s) {bad}; known: {sorted(known)}")
    return data


class _Bar:
    """Rich progress on stderr: calls done, calls/s, cache hits, cost so far."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None
        self.last = 0.0
        self.t0 = time.perf_counter()

    def status(self, label: str) -> None:
        if self.task is not None:
            self.p.stop_task(self.task)
        self.task = self.p.add_task(label, total=None, info="")
        self.t0 = time.perf_counter()

    def __call__(self, st: Any) -> None:
        now = time.perf_counter()
        done = st.cached + st.made + st.failed
        if self.task is None or (now - self.last < 0.1 and done < st.unique):
            return
        self.last = now
        rate = st.made / (now - self.t0) if now > self.t0 else 0.0
        info = f"{rate:.1f} calls/s · {st.cached} cached · ${st.cost:.4f}"
        if st.retries:
            info += f" · {st.retries} retries"
        self.p.update(self.task, total=st.unique, completed=done, info=info)


def _sibling(out: Path, tag: str) -> Path:
    name = out.name
    for suf in (".parquet", ".jsonl", ".csv"):
        if name.endswith(suf):
            return out.with_name(name[: -len(suf)] + f".{tag}{suf}")
    return out.with_name(name + f".{tag}")


@judge_app.command("run")
def run_cmd(
    src: Path = typer.Argument(..., metavar="IN", help="Comparisons (or responses for rubric)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Judge votes (.parquet, .jsonl, .csv)."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1."
    ),
    model: list[str] = typer.Option([], "--model", help="Judge model name; repeat for a panel."),
    panel: Path | None = typer.Option(
        None, "--panel", help="JSON/TOML list of judges (model, endpoint, prices, template)."
    ),
    mode: str = typer.Option("pairwise", "--mode", help="pairwise | rubric | reference."),
    template: str | None = typer.Option(
        None,
        "--template",
        help="Built-in (pairwise, mtbench, alpacaeval, reference, ultrafeedback, prometheus) "
        "or a Jinja2 file. Default per mode.",
    ),
    swap: bool = typer.Option(
        True, "--swap/--no-swap", help="Judge each pair in both orders (default)."
    ),
    keep_both: bool = typer.Option(
        False, "--keep-both", help="Keep the two orders as two votes instead of one."
    ),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight at once."),
    retries: int = typer.Option(5, "--retries", help="Retries per call (429, 5xx, timeouts)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds per request."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Cache folder (default ~/.cache/prefkit/judge)."
    ),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."
    ),
    price_in: float = typer.Option(0.0, "--price-in", help="USD per 1M input tokens."),
    price_out: float = typer.Option(0.0, "--price-out", help="USD per 1M output tokens."),
    max_calls: int | None = typer.Option(None, "--max-calls", help="Stop after N paid calls."),
    max_cost: float | None = typer.Option(None, "--max-cost", help="Stop before USD X."),
    aspects: str | None = typer.Option(
        None, "--aspects", help="rubric: comma-separated aspects (default from the template)."
    ),
    scale: int = typer.Option(5, "--scale", help="rubric: ratings from 1 to N."),
    reference_field: str = typer.Option(
        "reference", "--reference-field", help="reference: meta key holding the reference."
    ),
    temperature: float = typer.Option(0.0, "--temperature"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Cap on answer tokens."),
    logprobs: bool = typer.Option(
        True, "--logprobs/--no-logprobs", help="Ask for token log-probabilities (strength)."
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Label pairs (or rate responses) with LLM judges; resumable, cached, both orders."""
    from prefkit.io.base import ReadResult, write_rejects
    from prefkit.io.detect import read
    from prefkit.io.writers import guess_format, write
    from prefkit.judge.cache import Cache, default_cache_dir
    from prefkit.judge.client import Budget, Client, Endpoint
    from prefkit.judge.run import Judge, Options, judge_table
    from prefkit.judge.templates import DEFAULT_FOR_MODE, TemplateError, load_template

    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}, got {mode!r}", code=2)
    if not model and panel is None:
        fail("give the judge with --model NAME (repeatable) or --panel FILE", code=2)
    if concurrency < 1:
        fail("--concurrency must be >= 1", code=2)
    if retries < 0:
        fail("--retries must be >= 0", code=2)
    if timeout <= 0:
        fail("--timeout must be > 0", code=2)
    if scale < 2:
        fail("--scale must be >= 2", code=2)
    if max_calls is not None and max_calls < 1:
        fail("--max-calls must be >= 1", code=2)
    if max_cost is not None and (max_cost <= 0 or not (price_in or price_out or panel)):
        fail("--max-cost needs a positive amount and --price-in/--price-out", code=2)
    if keep_both and not swap:
        fail("--keep-both needs --swap (the two orders)", code=2)
    check_output(out, src)
    try:
        guess_format(out)
    except Exception as e:  # noqa: BLE001 - InputError
        fail(str(e), code=2)
    specs: list[dict[str, Any]] = _panel(panel) if panel is not None else []
    specs += [{"model": m} for m in model]
    judges = []
    for s in specs:
        url = s.get("endpoint") or endpoint
        if not url:
            fail(f"judge {s['model']!r}: no endpoint (give --endpoint URL)", code=2)
        try:
            tmpl = load_template(str(s.get("template") or template or DEFAULT_FOR_MODE[mode]))
            tmpl.check(mode)
        except TemplateError as e:
            fail(str(e))
        ep = Endpoint(
            url,
            s["model"],
            str(s.get("api_key_env") or api_key_env),
            float(s.get("price_in", price_in)),
            float(s.get("price_out", price_out)),
        )
        judges.append(Judge(ep, tmpl))
    names = [j.annotator for j in judges]
    if len(set(names)) < len(names):
        fail(f"the same judge model is given twice: {names}", code=2)
    result = read(src, fmt)
    report_rejects(src, result.rejects)
    from prefkit.schema import Kind

    kinds = (
        (Kind.COMPARISONS,) if mode != "rubric" else (Kind.COMPARISONS, Kind.RATINGS, Kind.BINARY)
    )
    table = next((result.tables[k] for k in kinds if k in result.tables), None)
    if table is None:
        fail(f"{src}: {mode} judging needs {' or '.join(k.value for k in kinds)}; "
             f"the {result.reader} reader gave {result.kind.value}")  # fmt: skip
    if table.num_rows == 0:
        fail(f"{src}: no row to judge ({len(result.rejects)} rejected by the reader)")
    cache_dir = cache or default_cache_dir()
    try:
        store = Cache(cache_dir)
    except (OSError, NotADirectoryError) as e:
        fail(f"--cache {cache_dir}: {e}")
    bar = _Bar()
    client = Client(
        cache=store,
        concurrency=concurrency,
        retries=retries,
        timeout=timeout,
        budget=Budget(max_calls, max_cost),
        progress=bar,
    )
    opts = Options(
        mode=mode,
        swap=swap,
        keep_both=keep_both,
        aspects=tuple(a.strip() for a in aspects.split(",") if a.strip()) if aspects else None,
        scale=(1, scale),
        reference_key=reference_field,
        temperature=temperature,
        max_tokens=max_tokens,
        logprobs=logprobs,
    )
    try:
        with bar.p:
            res = judge_table(table, judges, client, opts, str(src), bar.status)
    except (ValueError, TemplateError) as e:
        fail(f"{src}: {e}")
    except KeyboardInterrupt:
        n = len(store)
        console.print(
            f"interrupted: {n} answers are cached in {cache_dir}; re-run the same command to "
            "resume (answers that were in flight are asked again)",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    finally:
        store.close()
    rej_path = Path(str(out) + ".rejects.jsonl")
    target = out if res.complete else _sibling(out, "partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    write(ReadResult({res.kind: res.table}), target)
    stale = _sibling(out, "partial")
    if res.complete and stale.exists():
        stale.unlink()  # a finished resume supersedes the partial file
    if res.rejects:
        write_rejects(res.rejects, rej_path)
    elif rej_path.exists():
        rej_path.unlink()
    s = res.summary
    s["out"] = str(target)
    s["rejects_file"] = str(rej_path) if res.rejects else None
    s["cache"] = str(cache_dir)
    c = s["calls"]
    if not res.complete:
        fail(
            f"{res.error}; {res.table.num_rows} votes kept in {target}; {c['made'] + c['cached']} "
            f"answers are cached in {cache_dir}: re-run the same command to resume"
        )
    if as_json:
        print_json(s)
        return
    console.print(
        f"{', '.join(s['judges'])}: {res.table.num_rows} {res.kind.value} rows from "
        f"{s.get('pairs', s.get('responses'))} items; calls {c['made']} made, {c['cached']} "
        f"cached, {c['retries']} retries, ${c['cost_usd']:.4f}",
        soft_wrap=True,
    )
    if mode != "rubric":
        o = s["outcomes"]
        console.print(
            f"outcomes a {o['a']} · b {o['b']} · tie {o['tie']} · both_bad {o['both_bad']}; "
            f"orders disagree on {s['inconsistent']} (→ {'two votes' if keep_both else 'tie'}), "
            f"one order only {s['single_order']}"
        )
    if res.rejects:
        console.print(
            f"[yellow]{len(res.rejects)} rejected (no answer or no verdict after asking "
            f"twice): {rej_path}[/yellow]",
            soft_wrap=True,
        )
    console.print(f"wrote {target}", soft_wrap=True)


def _read_votes(paths: list[Path], fmt: str | None) -> Any:
    import pyarrow as pa

    from prefkit.io.detect import read
    from prefkit.schema import Kind, conform

    tables = []
    for p in paths:
        res = read(p, fmt)
        report_rejects(p, res.rejects)
        if Kind.COMPARISONS not in res.tables:
            fail(f"{p}: judge audit reads comparisons; the {res.reader} reader gave "
                 f"{res.kind.value}")  # fmt: skip
        tables.append(conform(res.tables[Kind.COMPARISONS], Kind.COMPARISONS))
    return pa.concat_tables(tables) if tables else None


def _fmt_ci(x: dict[str, Any] | None, key: str = "estimate") -> str:
    if not x or x.get(key) is None:
        return "—"
    lo, hi = x.get("ci") or (None, None)
    return f"{x[key]:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


@judge_app.command("audit")
def audit_cmd(
    votes: list[Path] = typer.Argument(..., metavar="VOTES...", help="Judge votes (1+ files)."),
    human: list[Path] = typer.Option(
        [], "--human", help="Human votes on the same pairs (repeatable)."
    ),
    judges: str | None = typer.Option(
        None, "--judges", help="Comma-separated annotators that are judges (default: see docs)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder for report.html, summary.json."),
    missing: str = typer.Option(
        "drop", "--missing", help="Pairs with a human label but no judge label: drop|tie|wrong."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Audit LLM judges: position, verbosity and self-preference biases, ties, and agreement
    with the human majority, each with a 95% interval; per judge and per source."""
    import json

    from prefkit.judge.audit import MISSING, audit_judges
    from prefkit.judge.report import render

    if missing not in MISSING:
        fail(f"--missing must be one of {', '.join(MISSING)}, got {missing!r}", code=2)
    if bootstrap < 50:
        fail("--bootstrap must be >= 50", code=2)
    if out is not None:
        check_output(out, [*votes, *human], kind="dir")
    vt = _read_votes(votes, fmt)
    ht = _read_votes(human, fmt) if human else None
    jl = [j.strip() for j in judges.split(",") if j.strip()] if judges else None
    try:
        summary, _ = audit_judges(vt, ht, jl, seed=seed, n_boot=bootstrap, missing=missing)
    except ValueError as e:
        fail(f"{', '.join(map(str, votes))}: {e}")
    summary["input"]["files"] = [str(p) for p in votes]
    summary["input"]["human_files"] = [str(p) for p in human]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(
            json.dumps(summary, indent=1, ensure_ascii=False, default=float) + "\n",
            encoding="utf-8",
        )
        (out / "report.html").write_text(
            render(summary, ", ".join(p.name for p in votes)), encoding="utf-8"
        )
    if as_json:
        print_json(summary)
        return
    import shutil

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"judge audit: {summary['input']['pairs']} pairs, "
              f"{summary['input']['pairs_with_human_label']} with a human label (95% CI)")  # fmt: skip
    for col in ("judge", "accuracy vs humans", "κ", "macro F1", "P(first wins)",
                "consistency", "length slope", "self-pref.", "tie rate"):  # fmt: skip
        t.add_column(col)
    for name, r in summary["judges"].items():
        ha = r.get("human_agreement") or {}
        sp = r.get("self_preference") or {}
        t.add_row(
            name, _fmt_ci(ha.get("accuracy")), _fmt_ci(ha.get("kappa")),
            _fmt_ci(ha.get("macro_f1")), _fmt_ci(r.get("p_first_wins"), "p"),
            _fmt_ci(r.get("consistency"), "p"), _fmt_ci(r.get("length_slope"), "per_100_chars"),
            _fmt_ci(sp.get("excess")), _fmt_ci(r.get("tie_rate"), "p"),
        )  # fmt: skip
    Console(stderr=True, width=max(140, shutil.get_terminal_size().columns)).print(t)
    if out is not None:
        console.print(f"report: {out / 'report.html'}", soft_wrap=True)


def _budget(value: str, n_pairs: int) -> int:
    v = value.strip()
    try:
        if v.endswith("%"):
            pct = float(v[:-1])
            if not 0 <= pct <= 100:
                raise ValueError
            return int(round(pct / 100 * n_pairs))
        n = int(v)
        if n < 0:
            raise ValueError
        return n
    except ValueError:
        fail(
            f"--budget must be a number of pairs or a percentage (e.g. 200 or 10%), got {value!r}",
            code=2,
        )


@judge_app.command("route")
def route_cmd(
    votes: Path = typer.Argument(..., metavar="VOTES", help="Judge votes (and any human votes)."),
    out: Path = typer.Argument(
        ..., metavar="OUT", help="Campaign file for `prefkit serve create`."
    ),
    budget: str = typer.Option(..., "--budget", help="Pairs to send to people: N or P%."),
    human: list[Path] = typer.Option(
        [], "--human", help="Human votes already collected on some pairs (repeatable)."
    ),
    judges: str | None = typer.Option(
        None, "--judges", help="Comma-separated annotators that are judges (default: see docs)."
    ),
    by: str = typer.Option(
        "auto", "--by", help="auto | model | uncertainty | disagreement | random."
    ),
    rest: Path | None = typer.Option(
        None, "--rest", help="Where the other pairs' labels go (default OUT.labels.parquet)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for ties and cross-fitting."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Hybrid routing: pick the pairs most worth a human label and write them as a
    `prefkit serve` campaign file; the others keep their judge labels."""
    import pyarrow as pa

    from prefkit.io.base import ReadResult
    from prefkit.io.writers import guess_format, write
    from prefkit.judge.audit import collect
    from prefkit.judge.route import STRATEGIES, route, routing_tables
    from prefkit.schema import Kind

    if by not in STRATEGIES:
        fail(f"--by must be one of {', '.join(STRATEGIES)}, got {by!r}", code=2)
    rest_path = rest or _sibling(out, "labels").with_suffix(".parquet")
    for p in (out, rest_path):
        check_output(p, [votes, *human])
        try:
            guess_format(p)
        except Exception as e:  # noqa: BLE001 - InputError
            fail(str(e), code=2)
    vt = _read_votes([votes], fmt)
    ht = _read_votes(human, fmt) if human else None
    jl = [j.strip() for j in judges.split(",") if j.strip()] if judges else None
    try:
        c = collect(vt, ht, jl)
        n = _budget(budget, c.n_pairs)
        r = route(c, n, by, seed)
    except ValueError as e:
        fail(f"{votes}: {e}")
    table = pa.concat_tables([vt] + ([ht] if ht is not None else []))
    camp, labelled = routing_tables(table, c, r)
    out.parent.mkdir(parents=True, exist_ok=True)
    write(ReadResult({Kind.COMPARISONS: camp}), out)
    write(ReadResult({Kind.COMPARISONS: labelled}), rest_path)
    s = r.summary | {"out": str(out), "rest": str(rest_path)}
    if as_json:
        print_json(s)
        return
    ea = s["expected_accuracy"]
    console.print(
        f"routed {s['routed']} of {s['candidates']} judge-only pairs to people "
        f"({s['strategy_used']}); expected agreement with human labels "
        f"{ea['before']:.3f} -> {ea['after']:.3f}",
        soft_wrap=True,
    )
    cal = s.get("calibration")
    if cal and cal.get("oof_auc") is not None:
        console.print(
            f"error model fitted on {cal['pairs']} human-labelled pairs "
            f"(out-of-fold AUC {cal['oof_auc']:.3f})"
        )
    console.print(
        f"wrote {out} (campaign) and {rest_path} (labels of the other pairs)", soft_wrap=True
    )


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
