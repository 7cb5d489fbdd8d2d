"""`prefkit serve` (run the web app) and `prefkit serve export|create|invite`."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit._cli import console, fail, print_json

DEFAULT_DB = "sqlite:///prefkit.db"

serve_app = typer.Typer(
    help="Collect feedback in a web app (FastAPI; SQLite by default, PostgreSQL with --db).",
    no_args_is_help=False,
    invoke_without_command=True,
)


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
) -> None:
    """Run the annotation web app (migrates the database first)."""
    if ctx.invoked_subcommand is not None:
        return
    import secrets

    import uvicorn

    from prefkit.serve.app import create_app
    from prefkit.serve.settings import Settings

    token = admin_token or secrets.token_urlsafe(24)
    url = base_url or f"http://{host}:{port}"
    settings = Settings(db_url=db, admin_token=token, base_url=url)
    app = create_app(settings)
    if demo or campaign is not None:
        from sqlalchemy.orm import Session

        from prefkit.serve import store

        with Session(app.state.engine) as s:
            if demo:
                from prefkit.serve.demo import GUIDELINES, demo_table

                spec = store.CampaignSpec(name="demo", guidelines=GUIDELINES, overlap=2)
                camp = store.create_campaign(s, demo_table(), spec)
            else:
                assert campaign is not None
                camp = store.create_campaign(
                    s, _read(campaign), store.CampaignSpec(name=campaign.stem)
                )
            ann, tok = store.invite(s, camp.id, "demo" if demo else "annotator-1")
            console.print(
                f"campaign {camp.id} ({camp.name}): invite link {url}/i/{tok}", soft_wrap=True
            )
    if admin_token is None:
        console.print(f"admin token: {token}  (sign in at {url}/admin)")
    else:
        console.print(f"admin: {url}/admin")
    console.print(f"database: {db}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _read(path: Path) -> object:
    from prefkit.io.detect import read

    return read(path).table


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
    """Export a campaign's votes as canonical comparisons (annotator, shown_first kept)."""
    from prefkit.serve.export import FORMATS, export_file
    from prefkit.serve.store import StoreError

    if fmt is not None and fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}", code=2)
    from prefkit._cli import check_output

    check_output(out, None, "file")
    try:
        n = export_file(db, campaign, out, fmt)
    except StoreError as e:
        fail(f"campaign {campaign}: {e.detail}")
    if as_json:
        print_json({"rows": n, "out": str(out), "campaign": campaign})
    else:
        console.print(f"wrote {n} rows to {out}")


@serve_app.command("create")
def create_cmd(
    path: Path = typer.Argument(..., help="Comparisons (outcomes ignored) or rankings file."),
    name: str | None = typer.Option(None, "--name", help="Campaign name (default: file stem)."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="SQLAlchemy database URL."),
    overlap: int = typer.Option(1, "--overlap", min=1, help="Distinct annotators per item."),
    policy: str = typer.Option(
        "least_judged", "--policy", help="round_robin, least_judged or active."
    ),  # fmt: skip
    questions: str = typer.Option(
        "pairwise,strength,rationale", "--questions", help="Comma-separated question types."
    ),  # fmt: skip
    guidelines: Path | None = typer.Option(None, "--guidelines", help="Markdown file."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Create a campaign in the database from any file prefkit reads."""
    from sqlalchemy.orm import Session

    from prefkit.io.detect import read
    from prefkit.serve import store
    from prefkit.serve.migrations import upgrade
    from prefkit.serve.models import make_engine

    table = read(path).table
    spec = store.CampaignSpec(
        name=name or path.stem,
        questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
        guidelines=guidelines.read_text(encoding="utf-8") if guidelines else "",
        overlap=overlap,
        policy=policy,
    )
    engine = make_engine(db)
    upgrade(engine)
    try:
        with Session(engine) as s:
            camp = store.create_campaign(s, table, spec)
            summary = {"campaign": camp.id, "name": camp.name, "items": table.num_rows}
    except store.StoreError as e:
        fail(f"{path}: {e.detail}")
    finally:
        engine.dispose()
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"campaign {summary['campaign']} ({summary['name']}): {summary['items']} items"
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
    from sqlalchemy.orm import Session

    from prefkit.serve import store
    from prefkit.serve.migrations import upgrade
    from prefkit.serve.models import make_engine

    engine = make_engine(db)
    upgrade(engine)
    try:
        with Session(engine) as s:
            ann, token = store.invite(s, campaign, name, expires_in)
            link = f"{base_url.rstrip('/')}/i/{token}"
            summary = {"annotator": ann.id, "name": name, "token": token, "invite_url": link}
    except store.StoreError as e:
        fail(f"campaign {campaign}: {e.detail}")
    finally:
        engine.dispose()
    if as_json:
        print_json(summary)
    else:
        console.print(f"invite link for {name}: {link}")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
