"""`prefkit serve` (run the web app) and `prefkit serve create|invite|export|close|reopen|revoke`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from prefkit._cli import console, fail, print_json

DEFAULT_DB = "sqlite:///prefkit.db"

serve_app = typer.Typer(
    help="Collect feedback in a web app (FastAPI; SQLite by default, PostgreSQL with --db).",
    no_args_is_help=False,
    invoke_without_command=True,
)


def _size(value: str, option: str) -> int:
    from prefkit.serve.settings import parse_size

    try:
        return parse_size(value)
    except ValueError as e:
        fail(f"{option}: {e}", code=2)


@contextmanager
def _session(db: str, create: bool = False) -> Iterator[Any]:
    """A session on a migrated database; one-line errors for a missing or unreachable one."""
    from sqlalchemy.orm import Session

    from prefkit.serve.models import DatabaseError, open_engine
    from prefkit.serve.store import StoreError

    try:
        engine = open_engine(db, create=create)
    except DatabaseError as e:
        fail(str(e))
    try:
        with Session(engine) as s:
            yield s
    except StoreError as e:
        fail(e.detail if isinstance(e.detail, str) else str(e))
    finally:
        engine.dispose()


def _create(s: Any, path: Path, spec: Any, rejects_out: Path | None) -> dict[str, Any]:
    """Read `path` through prefkit's readers, write its rejects, create the campaign."""
    from prefkit._cli import report_rejects
    from prefkit.io.base import write_rejects
    from prefkit.serve import store
    from prefkit.serve.items import import_summary, read_items

    items = read_items(path)
    info = import_summary(items)
    camp = store.create_campaign(s, items.table, spec, info)
    written = None
    if items.rejects:
        written = write_rejects(items.rejects, rejects_out or Path(f"{path.name}.rejects.jsonl"))
        report_rejects(path, items.rejects)
        console.print(f"rejected rows with their reasons: {written}", soft_wrap=True)
    return {
        "campaign": camp.id,
        "name": camp.name,
        "kind": camp.kind,
        "items": items.table.num_rows,
        "rows_in": items.rows_in,
        "rejected": len(items.rejects),
        "rejects": str(written) if written else None,
        "reader": items.reader,
    }


@serve_app.callback(invoke_without_command=True)
def serve_cmd(
    ctx: typer.Context,
    db: str = typer.Option(
        DEFAULT_DB,
        "--db",
        help="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://user@host/db.",
    ),  # fmt: skip
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    admin_token: str | None = typer.Option(
        None,
        "--admin-token",
        envvar="PREFKIT_ADMIN_TOKEN",
        help="Admin token (else generated and printed).",
    ),  # fmt: skip
    demo: bool = typer.Option(False, "--demo", help="Create a demo campaign and an invite."),
    campaign: Path | None = typer.Option(
        None, "--campaign", help="Create a campaign from this file before serving."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="Public URL for invite links."),
    secure_cookies: bool | None = typer.Option(
        None,
        "--secure-cookies/--no-secure-cookies",
        help="Mark cookies Secure (HTTPS only). Default: on when --base-url is https.",
    ),  # fmt: skip
    forwarded_allow_ips: str | None = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Comma-separated proxy IPs whose X-Forwarded-For is trusted (default: none).",
    ),  # fmt: skip
    import_dir: Path | None = typer.Option(
        None, "--import-dir", help="The only folder the admin API may read campaign files from."
    ),  # fmt: skip
    max_body: str = typer.Option(
        "256KiB", "--max-body", help="Largest request body (votes, invites), e.g. 256KiB."
    ),  # fmt: skip
    max_upload: str = typer.Option(
        "200MiB", "--max-upload", help="Largest campaign upload or rows body, e.g. 200MiB."
    ),  # fmt: skip
    session_ttl: float = typer.Option(
        12 * 3600, "--session-ttl", help="Seconds an admin sign-in lasts."
    ),  # fmt: skip
) -> None:
    """Run the annotation web app (migrates the database first)."""
    if ctx.invoked_subcommand is not None:
        return
    import secrets

    from prefkit.serve.settings import Settings

    if import_dir is not None and not import_dir.is_dir():
        fail(f"--import-dir {import_dir}: not a folder", code=2)
    if session_ttl <= 0:
        fail("--session-ttl must be > 0", code=2)
    token = admin_token or secrets.token_urlsafe(24)
    url = base_url or f"http://{host}:{port}"
    settings = Settings(
        db_url=db,
        admin_token=token,
        base_url=url,
        secure_cookies=secure_cookies,
        import_dir=import_dir,
        max_body=_size(max_body, "--max-body"),
        max_upload=_size(max_upload, "--max-upload"),
        session_ttl_s=session_ttl,
    )
    if demo or campaign is not None:
        from prefkit.serve import store

        with _session(db, create=True) as s:
            if demo:
                from prefkit.serve.demo import GUIDELINES, demo_items

                spec = store.CampaignSpec(name="demo", guidelines=GUIDELINES, overlap=2)
                camp = store.create_campaign(s, demo_items(), spec)
                cid, cname = camp.id, camp.name
            else:
                assert campaign is not None
                made = _create(s, campaign, store.CampaignSpec(name=campaign.stem), None)
                cid, cname = made["campaign"], made["name"]
            _, tok = store.invite(s, cid, "demo" if demo else "annotator-1")
        console.print(f"campaign {cid} ({cname}): invite link {url}/i/{tok}", soft_wrap=True)
    run_server(settings, host, port, forwarded_allow_ips, show_token=admin_token is None)


def run_server(
    settings: Any, host: str, port: int, forwarded_allow_ips: str | None, show_token: bool
) -> None:
    """uvicorn on `create_app(settings)`; X-Forwarded-For is trusted only from
    `forwarded_allow_ips` (None: from nobody)."""
    import uvicorn

    from prefkit.serve.app import create_app
    from prefkit.serve.models import DatabaseError

    try:
        app = create_app(settings)
    except DatabaseError as e:
        fail(str(e))
    url = settings.base_url
    if show_token:
        console.print(f"admin token: {settings.admin_token}  (sign in at {url}/admin)")
    else:
        console.print(f"admin: {url}/admin")
    console.print(f"database: {settings.db_url}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips or "",
    )


@serve_app.command("export")
def export_cmd(
    out: Path = typer.Argument(..., help="Output file (.parquet, .jsonl)."),
    campaign: int = typer.Option(..., "--campaign", "-c", help="Campaign id."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    fmt: str | None = typer.Option(
        None, "--format", help="parquet, jsonl or trl (default by extension)."
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Export a campaign's votes as canonical comparisons or rankings (annotator, shown_first
    kept)."""
    from prefkit.serve.export import FORMATS, ExportError, export_file
    from prefkit.serve.models import DatabaseError
    from prefkit.serve.store import StoreError

    if fmt is not None and fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}", code=2)
    from prefkit._cli import check_output

    check_output(out, None, "file")
    try:
        n = export_file(db, campaign, out, fmt)
    except (StoreError, ExportError) as e:
        fail(f"campaign {campaign}: {getattr(e, 'detail', e)}")
    except DatabaseError as e:
        fail(str(e))
    if as_json:
        print_json({"rows": n, "out": str(out), "campaign": campaign})
    else:
        console.print(f"wrote {n} rows to {out}")


@serve_app.command("create")
def create_cmd(
    path: Path = typer.Argument(
        ...,
        help="Items to judge: unlabelled pairs, prompts with k responses, or any file prefkit reads.",
    ),  # fmt: skip
    name: str | None = typer.Option(None, "--name", help="Campaign name (default: file stem)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    overlap: int = typer.Option(1, "--overlap", min=1, help="Distinct annotators per item."),
    policy: str = typer.Option(
        "least_judged", "--policy", help="round_robin, least_judged or active."
    ),  # fmt: skip
    questions: str = typer.Option(
        "pairwise,strength,rationale", "--questions", help="Comma-separated question types."
    ),  # fmt: skip
    aspects: str = typer.Option(
        "helpfulness", "--aspects", help="Comma-separated aspects for Likert questions."
    ),  # fmt: skip
    guidelines: Path | None = typer.Option(None, "--guidelines", help="Markdown file."),
    gold_from_outcome: bool = typer.Option(
        False, "--gold-from-outcome", help="The file's outcomes are known answers (gold items)."
    ),  # fmt: skip
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Where rejected rows go (default: ./FILE.rejects.jsonl)."
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Create a campaign from any file prefkit reads; every row is validated by the readers."""
    from prefkit.serve import store

    if not path.exists():
        fail(f"{path}: no such file")
    if guidelines is not None and not guidelines.is_file():
        fail(f"--guidelines {guidelines}: no such file")
    spec = store.CampaignSpec(
        name=name or path.stem,
        questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
        guidelines=guidelines.read_text(encoding="utf-8") if guidelines else "",
        overlap=overlap,
        policy=policy,
        aspects=tuple(a.strip() for a in aspects.split(",") if a.strip()),
        gold_from_outcome=gold_from_outcome,
    )
    with _session(db, create=True) as s:
        try:
            store.check_spec(spec)
        except store.StoreError as e:
            fail(f"{e.detail}", code=2)
        summary = _create(s, path, spec, rejects)
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"campaign {summary['campaign']} ({summary['name']}): {summary['items']} items "
            f"from {summary['rows_in']} rows, {summary['rejected']} rejected"
        )


@serve_app.command("invite")
def invite_cmd(
    campaign: int = typer.Argument(..., help="Campaign id."),
    name: str = typer.Argument(..., help="Annotator name."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    base_url: str = typer.Option(
        "http://127.0.0.1:8000", "--base-url", help="Public URL of the app."
    ),  # fmt: skip
    expires_in: float | None = typer.Option(
        None, "--expires-in", help="Seconds until the link expires."
    ),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Invite an annotator: prints the invite link (the token is stored only hashed)."""
    from prefkit.serve import store

    if expires_in is not None and not 0 < expires_in <= 10 * 365.25 * 86400:
        fail("--expires-in must be between 0 and ten years (in seconds)", code=2)
    with _session(db) as s:
        ann, token = store.invite(s, campaign, name, expires_in)
        link = f"{base_url.rstrip('/')}/i/{token}"
        summary = {"annotator": ann.id, "name": name, "token": token, "invite_url": link}
    if as_json:
        print_json(summary)
    else:
        console.print(f"invite link for {name} (annotator {summary['annotator']}): {link}")


def _lifecycle(db: str, as_json: bool, act: Callable[[Any], dict[str, Any]], say: str) -> None:
    with _session(db) as s:
        summary = act(s)
    if as_json:
        print_json(summary)
    else:
        console.print(say.format(**summary))


@serve_app.command("close")
def close_cmd(
    campaign: int = typer.Argument(..., help="Campaign id."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Close a campaign: no new tasks, new votes refused (409); exports keep working."""
    from prefkit.serve import store

    def act(s: Any) -> dict[str, Any]:
        c = store.set_closed(s, campaign, True)
        return {"campaign": c.id, "name": c.name, "closed": True}

    _lifecycle(db, as_json, act, "campaign {campaign} ({name}) closed")


@serve_app.command("reopen")
def reopen_cmd(
    campaign: int = typer.Argument(..., help="Campaign id."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Reopen a closed campaign."""
    from prefkit.serve import store

    def act(s: Any) -> dict[str, Any]:
        c = store.set_closed(s, campaign, False)
        return {"campaign": c.id, "name": c.name, "closed": False}

    _lifecycle(db, as_json, act, "campaign {campaign} ({name}) reopened")


@serve_app.command("revoke")
def revoke_cmd(
    annotator: int = typer.Argument(..., help="Annotator id (`serve invite --json` prints it)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Revoke an invitation: its link and token are refused from the next request on."""
    from prefkit.serve import store

    def act(s: Any) -> dict[str, Any]:
        a = store.revoke(s, annotator)
        return {"annotator": a.id, "name": a.name, "campaign": a.campaign_id, "revoked": True}

    _lifecycle(db, as_json, act, "invitation of {name} (annotator {annotator}) revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
