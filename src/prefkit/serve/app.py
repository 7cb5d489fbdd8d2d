"""The FastAPI app: `create_app(settings)`. Pages (Jinja2, autoescaped) + JSON API.

Auth: annotators by invite token (link → HttpOnly cookie, or `Authorization: Bearer`),
admins by the admin token. Cookie-authenticated writes need the CSRF header/field equal to
the CSRF cookie (double submit). Every response carries a strict CSP (no inline script)."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prefkit import __version__
from prefkit.serve import store
from prefkit.serve.models import Campaign, Vote, make_engine
from prefkit.serve.render import highlight_css
from prefkit.serve.security import (
    ADMIN_COOKIE,
    ANNOTATOR_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    SECURITY_HEADERS,
    RateLimiter,
    hash_token,
    new_token,
    same_token,
)
from prefkit.serve.settings import Settings

HERE = Path(__file__).resolve().parent
MAX_UPLOAD = 200 << 20  # bytes
AUTH_TTL_S = 5.0  # an annotator's identity is cached this long (expiry is checked always)
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]  # fmt: skip


class SecurityHeaders:
    """Pure ASGI middleware adding CSP and friends to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:  # fmt: skip
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------------------
# API models


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    path: str | None = Field(None, description="A file prefkit.io reads (server side).")
    rows: list[dict[str, Any]] | None = Field(
        None, description="Canonical comparison rows (outcome optional) instead of a path."
    )
    questions: list[str] = list(store.DEFAULT_QUESTIONS)
    guidelines: str = ""
    overlap: int = Field(1, ge=1, le=1000)
    policy: Literal["round_robin", "least_judged", "active"] = "least_judged"
    aspects: list[str] = ["helpfulness"]
    gold: dict[str, Literal["a", "b", "tie", "both_bad"]] | None = None
    gold_from_outcome: bool = Field(
        False, description="Use the file's outcomes as known answers (every item is gold)."
    )


class InviteIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_in_s: float | None = Field(None, gt=0)


class Span(BaseModel):
    response: Literal["a", "b"]
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    label: str = Field(max_length=100)


class VoteIn(BaseModel):
    idempotency_key: str = Field(min_length=8, max_length=100)
    item_id: int
    outcome: Literal["a", "b", "tie", "both_bad"] | None = None
    strength: float | None = Field(None, ge=0.0, le=1.0)
    rationale: str | None = Field(None, max_length=20000)
    likert: dict[str, int] | None = None
    thumbs: dict[str, bool] | None = None
    ranking: list[int] | None = None
    spans: list[Span] | None = None
    shown_first: Literal["a", "b"] | None = None
    elapsed_ms: int | None = Field(None, ge=0)


# ---------------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    """Build the app: engine, migrations (Alembic) at start-up, routes."""
    engine = make_engine(settings.db_url, settings.pool_size)
    if settings.migrate:
        from prefkit.serve.migrations import upgrade

        upgrade(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    admin_hash = hash_token(settings.admin_token)
    login_limit = RateLimiter(settings.login_rate, settings.login_window_s)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    css = highlight_css()

    # No Swagger/ReDoc pages: they load scripts from a CDN and inline, which the CSP forbids.
    # The OpenAPI schema itself is served at /openapi.json.
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="prefkit serve",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = factory
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SecurityHeaders)

    def db() -> Iterator[Session]:
        with factory() as s:
            yield s

    DB = Annotated[Session, Depends(db)]

    def bearer(request: Request) -> str | None:
        h = request.headers.get("authorization", "")
        return h[7:].strip() if h.lower().startswith("bearer ") else None

    def check_csrf(request: Request, supplied: str | None) -> None:
        if not same_token(request.cookies.get(CSRF_COOKIE), supplied):
            raise HTTPException(403, "CSRF token missing or wrong")

    auth_cache: dict[str, tuple[store.Who, float]] = {}

    def annotator(request: Request, s: Session) -> store.Who:
        tok = bearer(request)
        via_cookie = tok is None
        if via_cookie:
            tok = request.cookies.get(ANNOTATOR_COOKIE)
        if not tok:
            raise HTTPException(401, "annotator token required")
        h = hash_token(tok)
        hit = auth_cache.get(h)
        now = time.monotonic()
        if hit is not None and now - hit[1] < AUTH_TTL_S:
            ann: store.Who | None = hit[0] if store.still_valid(hit[0]) else None
        else:
            ann = store.annotator_by_hash(s, h)
            if ann is not None:
                if len(auth_cache) > 10_000:
                    auth_cache.clear()
                auth_cache[h] = (ann, now)
        if ann is None:
            raise HTTPException(401, "invalid or expired token")
        if via_cookie and request.method not in ("GET", "HEAD"):
            check_csrf(request, request.headers.get(CSRF_HEADER))
        return ann

    def is_admin(request: Request) -> bool:
        tok = bearer(request) or request.cookies.get(ADMIN_COOKIE)
        return tok is not None and same_token(hash_token(tok), admin_hash)

    def admin(request: Request) -> None:
        tok = bearer(request)
        if tok is None:
            tok = request.cookies.get(ADMIN_COOKIE)
            if tok is not None and request.method not in ("GET", "HEAD"):
                check_csrf(request, request.headers.get(CSRF_HEADER))
        if tok is None:
            raise HTTPException(401, "admin token required")
        if not same_token(hash_token(tok), admin_hash):
            # a valid annotator token is authenticated but not allowed here
            with factory() as s:
                if store.annotator_by_token(s, tok) is not None:
                    raise HTTPException(403, "admin only")
            raise HTTPException(401, "invalid admin token")

    Admin = Depends(admin)

    @app.exception_handler(store.StoreError)
    async def _store_error(_r: Request, e: store.StoreError) -> JSONResponse:
        return JSONResponse({"detail": e.detail}, status_code=e.status)

    def csrf_of(request: Request) -> str:
        return request.cookies.get(CSRF_COOKIE) or new_token()

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        csrf = csrf_of(request)
        resp = templates.TemplateResponse(
            request, name, {"csrf": csrf, "version": __version__, **ctx}, status_code=status
        )
        if request.cookies.get(CSRF_COOKIE) != csrf:
            resp.set_cookie(CSRF_COOKIE, csrf, samesite="strict", secure=settings.secure_cookies)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def client_key(request: Request) -> str:
        return request.client.host if request.client else "?"

    # ---------------- pages

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        if request.cookies.get(ANNOTATOR_COOKIE):
            return RedirectResponse("/annotate", status_code=303)
        return RedirectResponse("/admin", status_code=303)

    @app.get("/i/{token}", include_in_schema=False)
    def invite_link(token: str, request: Request, s: DB) -> Response:
        if store.annotator_by_token(s, token) is None:
            if not login_limit.hit("invite:" + client_key(request)):
                return page(request, "message.html", 429, message="Too many attempts.")
            return page(request, "message.html", 401, message="This invite link is not valid.")
        resp = RedirectResponse("/annotate", status_code=303)
        resp.set_cookie(
            ANNOTATOR_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
        )
        resp.set_cookie(CSRF_COOKIE, csrf_of(request), samesite="strict")
        return resp

    @app.get("/annotate", include_in_schema=False)
    def annotate_page(request: Request, s: DB) -> Response:
        ann = store.annotator_by_token(s, request.cookies.get(ANNOTATOR_COOKIE))
        if ann is None:
            return page(request, "message.html", 401, message="Open your invite link first.")
        camp = s.get(Campaign, ann.campaign_id)
        assert camp is not None
        from prefkit.serve.render import render_markdown

        return page(
            request,
            "annotate.html",
            campaign=camp,
            annotator=ann,
            guidelines_html=render_markdown(camp.guidelines),
        )

    @app.get("/admin", include_in_schema=False)
    def admin_page(request: Request, s: DB) -> Response:
        if not is_admin(request):
            return page(request, "login.html")
        camps = list(s.scalars(select(Campaign).order_by(Campaign.id)))
        return page(request, "admin.html", campaigns=camps)

    @app.post("/admin/login", include_in_schema=False)
    def admin_login(
        request: Request, token: Annotated[str, Form()], csrf: Annotated[str, Form()]
    ) -> Response:
        check_csrf(request, csrf)
        if not login_limit.hit("login:" + client_key(request)):
            return page(request, "login.html", 429, error="Too many attempts; wait a minute.")
        if not same_token(hash_token(token), admin_hash):
            return page(request, "login.html", 401, error="Wrong admin token.")
        resp = RedirectResponse("/admin", status_code=303)
        resp.set_cookie(
            ADMIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies
        )
        return resp

    @app.get("/admin/campaigns/{cid}", include_in_schema=False)
    def campaign_page(cid: int, request: Request, s: DB) -> Response:
        if not is_admin(request):
            return page(request, "login.html", 401)
        camp = s.get(Campaign, cid)
        if camp is None:
            return page(request, "message.html", 404, message="No such campaign.")
        return page(request, "campaign.html", campaign=camp)

    @app.get("/assets/highlight.css", include_in_schema=False)
    def highlight() -> Response:
        return Response(css, media_type="text/css")

    # ---------------- annotator API
    # Each handler runs in one worker thread: auth and database work in one hop (a
    # dependency per step would cost a thread hop each on the hot vote path).

    @app.get("/api/me")
    def me(request: Request) -> dict[str, Any]:
        with factory() as s:
            ann = annotator(request, s)
            camp = s.get(Campaign, ann.campaign_id)
            assert camp is not None
            return {
                "annotator": ann.name,
                "campaign": {"id": camp.id, "name": camp.name, "questions": camp.questions},
                "progress": store.progress(s, ann),
            }

    @app.get("/api/task/next")
    def next_task(request: Request) -> dict[str, Any]:
        with factory() as s:
            ann = annotator(request, s)
            a = store.next_task(s, ann)
            if a is None:
                return {"done": True, "progress": store.progress(s, ann)}
            return {"done": False, **store.task_view(s, ann, a)}

    @app.get("/api/tasks/{seq}")
    def task_at(seq: int, request: Request) -> dict[str, Any]:
        with factory() as s:
            ann = annotator(request, s)
            return {"done": False, **store.task_view(s, ann, store.assignment_at(s, ann, seq))}

    def vote_now(vote: VoteIn, request: Request) -> JSONResponse:
        with factory() as s:
            ann = annotator(request, s)
            return JSONResponse(store.submit_vote(s, ann, vote.model_dump()))

    inline = settings.inline_writes
    if inline is None:
        inline = settings.db_url.startswith("sqlite")
    if inline:
        # SQLite has one writer at a time anyway: running the short write transaction on the
        # event loop avoids a worker-thread hop per vote (about half the server CPU per vote).
        @app.post("/api/votes", response_model=None)
        async def post_vote(vote: VoteIn, request: Request) -> JSONResponse:
            """Submit an answer. Retrying with the same `idempotency_key` never counts
            twice and returns the first response."""
            return vote_now(vote, request)
    else:

        @app.post("/api/votes", response_model=None)
        def post_vote_threaded(vote: VoteIn, request: Request) -> JSONResponse:
            """Submit an answer. Retrying with the same `idempotency_key` never counts
            twice and returns the first response."""
            return vote_now(vote, request)

    @app.get("/api/votes/mine")
    def votes_mine(request: Request) -> list[dict[str, Any]]:
        with factory() as s:
            return store.my_votes(s, annotator(request, s))

    # ---------------- admin API

    @app.post("/api/campaigns", dependencies=[Admin], status_code=201)
    def new_campaign(body: CampaignIn, s: DB) -> dict[str, Any]:
        from prefkit.schema import Kind, from_rows

        if (body.path is None) == (body.rows is None):
            raise HTTPException(422, "give exactly one of path or rows")
        if body.path is not None:
            from prefkit.io.base import InputError
            from prefkit.io.detect import read
            from prefkit.schema import SchemaError

            try:
                table = read(body.path).table
            except (InputError, SchemaError) as e:
                raise HTTPException(422, str(e)) from e
        else:
            rows = [{**r, "outcome": r.get("outcome") or "tie"} for r in body.rows or []]
            table = from_rows(rows, Kind.COMPARISONS)
        spec = store.CampaignSpec(
            name=body.name,
            questions=tuple(body.questions),
            guidelines=body.guidelines,
            overlap=body.overlap,
            policy=body.policy,
            aspects=tuple(body.aspects),
            gold=dict(body.gold) if body.gold else None,
            gold_from_outcome=body.gold_from_outcome,
        )
        camp = store.create_campaign(s, table, spec)
        return campaign_json(camp, s)

    @app.post("/api/campaigns/upload", dependencies=[Admin], status_code=201)
    def upload_campaign(
        s: DB,
        file: UploadFile,
        name: Annotated[str, Form(min_length=1, max_length=200)],
        overlap: Annotated[int, Form(ge=1, le=1000)] = 1,
        policy: Annotated[
            Literal["round_robin", "least_judged", "active"], Form()
        ] = "least_judged",
        questions: Annotated[str, Form()] = ",".join(store.DEFAULT_QUESTIONS),
        guidelines: Annotated[str, Form()] = "",
        gold_from_outcome: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Create a campaign from an uploaded file in any format prefkit.io reads."""
        import re
        import tempfile

        from prefkit.io.base import InputError
        from prefkit.io.detect import read
        from prefkit.schema import SchemaError

        suffix = "".join(Path(file.filename or "upload").suffixes[-2:])
        suffix = suffix if re.fullmatch(r"(\.[A-Za-z0-9]{1,10}){0,2}", suffix) else ""
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"upload{suffix}"
            size = 0
            with path.open("wb") as out:
                while chunk := file.file.read(1 << 20):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise HTTPException(413, f"file larger than {MAX_UPLOAD >> 20} MiB")
                    out.write(chunk)
            try:
                table = read(path).table
            except (InputError, SchemaError) as e:
                raise HTTPException(
                    422, str(e).replace(str(path), file.filename or "upload")
                ) from e
        spec = store.CampaignSpec(
            name=name,
            questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
            guidelines=guidelines,
            overlap=overlap,
            policy=policy,
            gold_from_outcome=gold_from_outcome,
        )
        return campaign_json(store.create_campaign(s, table, spec), s)

    def campaign_json(camp: Campaign, s: Session) -> dict[str, Any]:
        st = store.progress_of_campaign(s, camp.id)
        return {
            "id": camp.id,
            "name": camp.name,
            "kind": camp.kind,
            "questions": camp.questions,
            "overlap": camp.overlap,
            "policy": camp.policy,
            "arena": bool(camp.arena),
            **st,
        }

    @app.get("/api/campaigns", dependencies=[Admin])
    def list_campaigns(s: DB) -> list[dict[str, Any]]:
        return [campaign_json(c, s) for c in s.scalars(select(Campaign).order_by(Campaign.id))]

    @app.get("/api/campaigns/{cid}", dependencies=[Admin])
    def get_campaign(cid: int, s: DB) -> dict[str, Any]:
        camp = s.get(Campaign, cid)
        if camp is None:
            raise HTTPException(404, "no such campaign")
        return campaign_json(camp, s)

    @app.post("/api/campaigns/{cid}/annotators", dependencies=[Admin], status_code=201)
    def new_annotator(cid: int, body: InviteIn, s: DB) -> dict[str, Any]:
        ann, token = store.invite(s, cid, body.name, body.expires_in_s)
        return {
            "id": ann.id,
            "name": ann.name,
            "token": token,
            "invite_url": f"{settings.base_url.rstrip('/')}/i/{token}",
            "invite_path": f"/i/{token}",
        }

    @app.get("/api/campaigns/{cid}/stats", dependencies=[Admin])
    def campaign_stats(cid: int, s: DB) -> dict[str, Any]:
        return store.stats(s, cid)

    @app.get("/api/campaigns/{cid}/votes", dependencies=[Admin])
    def campaign_votes(cid: int, s: DB) -> list[dict[str, Any]]:
        rows = s.scalars(select(Vote).where(Vote.campaign_id == cid).order_by(Vote.id))
        return [
            {**store.vote_response(v), "annotator_id": v.annotator_id, "strength": v.strength}
            for v in rows
        ]

    @app.get("/api/campaigns/{cid}/export", dependencies=[Admin])
    def export(
        cid: int, s: DB, format: Literal["parquet", "jsonl", "trl"] = Query("parquet")
    ) -> Response:
        from prefkit.serve.export import export_bytes

        data, media, ext = export_bytes(store.export_table(s, cid), format)
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="campaign-{cid}.{ext}"'},
        )

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
