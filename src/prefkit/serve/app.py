"""The FastAPI app: `create_app(settings)`. Pages (Jinja2, autoescaped) + JSON API.

Every request passes `Guard` first (the outermost middleware): it authenticates `/api/*`
requests from their headers before any byte of the body is read or parsed, then limits the
body's size (`Settings.max_body`, `max_upload` for campaign creation: 413 at once when
Content-Length is too large, else as soon as the bytes passed the limit), adds the security
headers to every response (errors included) and turns an unexpected exception into a plain
500 that still carries them. Validation errors name the field and never echo the input.

Auth: annotators by invite token (link → HttpOnly cookie, or `Authorization: Bearer`);
admins by the admin token as a bearer, or a signed, expiring session cookie from the sign-in
form (logout ends it). Cookie-authenticated writes need the CSRF header/field equal to the
CSRF cookie (double submit). Every response carries a strict CSP (no inline script)."""

import dataclasses
import datetime as dt
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prefkit import __version__
from prefkit.serve import store
from prefkit.serve.models import Campaign, Vote, make_engine, open_engine, utcnow
from prefkit.serve.render import highlight_css
from prefkit.serve.security import (
    ADMIN_COOKIE,
    ANNOTATOR_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    SECURITY_HEADERS,
    RateLimiter,
    hash_token,
    new_session_cookie,
    new_token,
    open_session_cookie,
    same_token,
    session_key,
)
from prefkit.serve.settings import Settings

HERE = Path(__file__).resolve().parent
MAX_ID = 2**63 - 1  # the largest id a database row can have (SQLite and PostgreSQL bigint)
MAX_INT4 = 2**31 - 1
TEN_YEARS_S = 10 * 365.25 * 86400
log = logging.getLogger("prefkit.serve")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_API = frozenset({"/api/health"})
ANNOTATOR_API = re.compile(r"/api/(me|task/next|tasks/[^/]+|votes|votes/mine)")
ADMIN = "admin"  # request.state.who of an admin


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit:,} bytes")


class Guard:
    """Pure ASGI middleware, outermost: authenticate `/api/*` before the body is touched,
    then limit the body's size (413 at once when Content-Length is too large, else as soon as
    the bytes received pass the limit), security headers on every response, no exception
    escapes as a reset connection. `limit_of(scope)` is the body limit of a request."""

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[Scope], Awaitable[Response | None]],
        limit_of: Callable[[Scope], int],
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limit_of = limit_of
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        self.names = {k for k, _ in self.headers}

    def _limited(
        self, scope: Scope, receive: Receive, over: list[bool]
    ) -> tuple[Response | None, Receive]:
        limit = self.limit_of(scope)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return JSONResponse({"detail": "bad Content-Length"}, status_code=400), receive
            if int(length) > limit:
                return JSONResponse({"detail": BodyTooLarge(limit).detail}, status_code=413), receive  # fmt: skip
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over[0] = True
                    raise BodyTooLarge(limit)
            return message

        return None, counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        headers = dict(scope.get("headers") or [])
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        # a body refused unread: close the connection after the answer rather than let the
        # server read (and throw away) the rest of it
        close = [False]

        async def send_with_headers(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                kept = [h for h in message.get("headers", []) if h[0].lower() not in self.names]
                extra = [(b"connection", b"close")] if close[0] and has_body else []
                message = {**message, "headers": kept + self.headers + extra}
            await send(message)

        try:
            denied = await self.authenticate(scope)
            if denied is None:
                denied, receive = self._limited(scope, receive, close)
            if denied is not None:
                close[0] = True
                await denied(scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
        except BodyTooLarge as e:  # raised while a handler read the body
            close[0] = True
            if not started:
                resp = JSONResponse({"detail": e.detail}, status_code=413)
                await resp(scope, receive, send_with_headers)
        except Exception:
            log.exception("error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                resp = JSONResponse({"detail": "internal server error"}, status_code=500)
                await resp(scope, receive, send_with_headers)


# ---------------------------------------------------------------------------------------
# API models: every field bounded; text must be valid Unicode without NUL characters.


def _clean_text(s: str) -> str:
    if "\x00" in s:
        raise ValueError("text contains a NUL character")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (a lone surrogate)") from None
    return s


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[
        str,
        StringConstraints(min_length=min_length, max_length=max_length),
        AfterValidator(_clean_text),
    ]


Name = _text(200, 1)
Label = _text(100, 1)
Side = Annotated[str, StringConstraints(pattern=r"^(a|b|[0-9]{1,2})$")]
LikertKey = Annotated[
    str,
    StringConstraints(pattern=r"^[^:\x00]{1,100}:(a|b|[0-9]{1,2})$"),
    AfterValidator(_clean_text),  # fmt: skip
]
Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:~-]{8,100}$")]
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]
Outcome = Literal["a", "b", "tie", "both_bad"]
Question = Literal["pairwise", "strength", "likert", "thumbs", "ranking", "rationale", "spans"]
Policy = Literal["round_robin", "least_judged", "active"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignIn(Strict):
    name: Name  # type: ignore[valid-type]
    path: _text(4096, 1) | None = Field(  # type: ignore[valid-type]
        None, description="A file under the server's --import-dir (relative to it) that prefkit reads."
    )  # fmt: skip
    rows: list[dict[str, Any]] | None = Field(
        None,
        max_length=1_000_000,
        description="Items: {prompt, response_a, response_b} (outcome optional) or "
        "{prompt, responses: [...]}; read through prefkit's reader for unlabelled items.",
    )
    questions: list[Question] = Field(
        ["pairwise", "strength", "rationale"], min_length=1, max_length=7
    )
    guidelines: _text(100_000) = ""  # type: ignore[valid-type]
    overlap: int = Field(1, ge=1, le=1000)
    policy: Policy = "least_judged"
    aspects: list[Label] = Field(["helpfulness"], min_length=1, max_length=20)  # type: ignore[valid-type]
    gold: dict[Name, Outcome] | None = Field(None, max_length=1_000_000)  # type: ignore[valid-type]
    gold_from_outcome: bool = Field(
        False, description="Use the file's outcomes as known answers (every item is gold)."
    )


class InviteIn(Strict):
    name: Name  # type: ignore[valid-type]
    expires_in_s: float | None = Field(None, gt=0, le=TEN_YEARS_S, allow_inf_nan=False)


class Span(Strict):
    response: Side
    start: int = Field(ge=0, le=10_000_000)
    end: int = Field(ge=0, le=10_000_000)
    label: Label  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class VoteIn(Strict):
    idempotency_key: Key = Field(description="Client-made, 8-100 characters [A-Za-z0-9._:~-]; unique per annotator.")  # fmt: skip
    item_id: int = Field(ge=1, le=MAX_ID)
    outcome: Outcome | None = None
    strength: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Directional, as in canonical tables: 1 = strongly prefers a, 0.5 = no "
        "preference, 0 = strongly prefers b. Must agree with the outcome.",
    )
    rationale: _text(20_000) | None = None  # type: ignore[valid-type]
    likert: dict[LikertKey, Annotated[int, Field(ge=store.LIKERT[0], le=store.LIKERT[1])]] | None = Field(None, max_length=64)  # fmt: skip
    thumbs: dict[Side, bool] | None = Field(None, max_length=100)
    ranking: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(None, min_length=2, max_length=100)  # fmt: skip
    spans: list[Span] | None = Field(None, max_length=200)
    elapsed_ms: int | None = Field(None, ge=0, le=MAX_INT4)


_LOC = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}|\[key\]")


def _safe_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI/pydantic errors without the input: location (field names only), message,
    type."""
    out = []
    for e in errors:
        loc = [x if isinstance(x, int) or (isinstance(x, str) and _LOC.fullmatch(x)) else "…" for x in e.get("loc", ())]  # fmt: skip
        msg = str(e.get("msg", "invalid")).encode("utf-8", "replace").decode("utf-8")[:300]
        out.append({"loc": loc, "msg": msg, "type": str(e.get("type", "value_error"))[:60]})
    return out


# ---------------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    """Build the app: engine, migrations (Alembic) at start-up, routes."""
    if settings.migrate:
        engine = open_engine(settings.db_url, create=True, pool_size=settings.pool_size)
    else:
        engine = make_engine(settings.db_url, settings.pool_size)
    factory = sessionmaker(engine, expire_on_commit=False)
    admin_hash = hash_token(settings.admin_token)
    skey = session_key(settings.admin_token)
    login_limit = RateLimiter(settings.login_rate, settings.login_window_s)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    css = highlight_css()
    secure = settings.cookies_secure
    inline = settings.inline_writes
    if inline is None:
        inline = settings.db_url.startswith("sqlite")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    # No Swagger/ReDoc pages: they load scripts from a CDN and inline, which the CSP forbids.
    # The OpenAPI schema itself is served at /openapi.json.
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

    def db() -> Iterator[Session]:
        with factory() as s:
            yield s

    DB = Annotated[Session, Depends(db)]

    # ---------------- authentication (runs in Guard, before the body)

    def bearer(request: Request) -> str | None:
        h = request.headers.get("authorization", "")
        return h[7:].strip() if h.lower().startswith("bearer ") else None

    def csrf_ok(request: Request, supplied: str | None) -> bool:
        return same_token(request.cookies.get(CSRF_COOKIE), supplied)

    def admin_session(request: Request, s: Session) -> bool:
        sid = open_session_cookie(skey, request.cookies.get(ADMIN_COOKIE), time.time())
        return sid is not None and store.admin_session_active(s, sid)

    def deny(status: int, detail: str) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    def check(request: Request) -> Response | store.Who | str:
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        tok = bearer(request)
        with factory() as s:
            if ANNOTATOR_API.fullmatch(request.url.path):
                if tok is None:
                    tok = request.cookies.get(ANNOTATOR_COOKIE)
                    if tok and unsafe and not csrf_ok(request, request.headers.get(CSRF_HEADER)):
                        return deny(403, "CSRF token missing or wrong")
                if not tok:
                    return deny(401, "annotator token required")
                who = store.annotator_by_hash(s, hash_token(tok))
                return who if who is not None else deny(401, "invalid, expired or revoked token")
            if tok is not None:
                if same_token(hash_token(tok), admin_hash):
                    return ADMIN
                if store.annotator_by_hash(s, hash_token(tok)) is not None:
                    return deny(403, "admin only")
                return deny(401, "invalid admin token")
            if request.cookies.get(ADMIN_COOKIE) is not None:
                if not admin_session(request, s):
                    return deny(401, "admin session expired or ended; sign in again")
                if unsafe and not csrf_ok(request, request.headers.get(CSRF_HEADER)):
                    return deny(403, "CSRF token missing or wrong")
                return ADMIN
        return deny(401, "admin token required")

    async def authenticate(scope: Scope) -> Response | None:
        path = scope["path"]
        if not path.startswith("/api/") or path in PUBLIC_API:
            return None
        request = Request(scope)
        got = check(request) if inline else await run_in_threadpool(check, request)
        if isinstance(got, Response):
            return got
        scope.setdefault("state", {})["who"] = got
        return None

    upload_paths = {"/api/campaigns", "/api/campaigns/upload"}

    def limit_of(scope: Scope) -> int:
        return settings.max_upload if scope["path"] in upload_paths else settings.max_body

    app.add_middleware(Guard, authenticate=authenticate, limit_of=limit_of)

    def annotator(request: Request) -> store.Who:
        who = getattr(request.state, "who", None)
        if not isinstance(who, store.Who):
            raise HTTPException(401, "annotator token required")
        return who

    def require_admin(request: Request) -> None:
        if getattr(request.state, "who", None) != ADMIN:
            raise HTTPException(401, "admin token required")

    Admin = Depends(require_admin)

    def is_admin_page(request: Request) -> bool:
        tok = bearer(request)
        if tok is not None:
            return same_token(hash_token(tok), admin_hash)
        with factory() as s:
            return admin_session(request, s)

    # ---------------- errors: the field named, the input never echoed

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _safe_errors(e.errors())}, status_code=422)

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
            resp.set_cookie(CSRF_COOKIE, csrf, samesite="strict", secure=secure)
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
        key = "invite:" + client_key(request)
        if login_limit.blocked(key):
            return page(request, "message.html", 429, message="Too many attempts.")
        if store.annotator_by_token(s, token[:200]) is None:
            login_limit.fail(key)
            return page(request, "message.html", 401, message="This invite link is not valid.")
        resp = RedirectResponse("/annotate", status_code=303)
        resp.set_cookie(ANNOTATOR_COOKIE, token, httponly=True, samesite="strict", secure=secure)
        resp.set_cookie(CSRF_COOKIE, csrf_of(request), samesite="strict", secure=secure)
        return resp

    @app.get("/annotate", include_in_schema=False)
    def annotate_page(request: Request, s: DB) -> Response:
        ann = store.annotator_by_token(s, request.cookies.get(ANNOTATOR_COOKIE))
        if ann is None:
            return page(request, "message.html", 401, message="Open your invite link first.")
        camp = store.get_campaign(s, ann.campaign_id)
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
        if not is_admin_page(request):
            return page(request, "login.html")
        camps = list(s.scalars(select(Campaign).order_by(Campaign.id)))
        return page(request, "admin.html", campaigns=camps)

    @app.post("/admin/login", include_in_schema=False)
    def admin_login(
        request: Request,
        s: DB,
        token: Annotated[str, Form(max_length=500)],
        csrf: Annotated[str, Form(max_length=100)],
    ) -> Response:
        if not csrf_ok(request, csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        key = "login:" + client_key(request)
        if login_limit.blocked(key):
            return page(request, "login.html", 429, error="Too many attempts; wait a minute.")
        if not same_token(hash_token(token), admin_hash):
            login_limit.fail(key)  # only failures count
            return page(request, "login.html", 401, error="Wrong admin token.")
        expires = int(time.time() + settings.session_ttl_s)
        sid, cookie = new_session_cookie(skey, expires)
        store.start_admin_session(s, sid, utcnow() + dt.timedelta(seconds=settings.session_ttl_s))
        resp = RedirectResponse("/admin", status_code=303)
        resp.set_cookie(
            ADMIN_COOKIE, cookie, max_age=int(settings.session_ttl_s), httponly=True,
            samesite="strict", secure=secure,
        )  # fmt: skip
        return resp

    @app.post("/admin/logout", include_in_schema=False)
    def admin_logout(
        request: Request, s: DB, csrf: Annotated[str, Form(max_length=100)]
    ) -> Response:
        if not csrf_ok(request, csrf):
            raise HTTPException(403, "CSRF token missing or wrong")
        sid = open_session_cookie(skey, request.cookies.get(ADMIN_COOKIE), time.time())
        if sid is not None:
            store.end_admin_session(s, sid)
        resp = RedirectResponse("/admin", status_code=303)
        resp.delete_cookie(ADMIN_COOKIE, httponly=True, samesite="strict", secure=secure)
        return resp

    @app.get("/admin/campaigns/{cid}", include_in_schema=False)
    def campaign_page(cid: Id, request: Request, s: DB) -> Response:
        if not is_admin_page(request):
            return page(request, "login.html", 401)
        camp = s.get(Campaign, cid)
        if camp is None:
            return page(request, "message.html", 404, message="No such campaign.")
        return page(request, "campaign.html", campaign=camp)

    @app.get("/assets/highlight.css", include_in_schema=False)
    def highlight() -> Response:
        return Response(css, media_type="text/css")

    # ---------------- annotator API (authenticated by Guard)

    @app.get("/api/me")
    def me(request: Request) -> dict[str, Any]:
        ann = annotator(request)
        with factory() as s:
            camp = store.get_campaign(s, ann.campaign_id)
            return {
                "annotator": ann.name,
                "campaign": {
                    "id": camp.id,
                    "name": camp.name,
                    "questions": camp.questions,
                    "closed": camp.closed_at is not None,
                },  # fmt: skip
                "progress": store.progress(s, ann),
            }

    @app.get("/api/task/next")
    def next_task(request: Request) -> dict[str, Any]:
        ann = annotator(request)
        with factory() as s:
            a = store.next_task(s, ann)
            if a is None:
                return {"done": True, "closed": ann.closed, "progress": store.progress(s, ann)}
            return {"done": False, **store.task_view(s, ann, a)}

    @app.get("/api/tasks/{seq}")
    def task_at(seq: Annotated[int, PathParam(ge=1, le=MAX_INT4)], request: Request) -> dict[str, Any]:  # fmt: skip
        ann = annotator(request)
        with factory() as s:
            return {"done": False, **store.task_view(s, ann, store.assignment_at(s, ann, seq))}

    def vote_now(vote: VoteIn, request: Request) -> JSONResponse:
        ann = annotator(request)
        with factory() as s:
            return JSONResponse(store.submit_vote(s, ann, vote.model_dump()))

    vote_doc = (
        "Submit an answer to a task the server assigned to you. Retrying with the same "
        "`idempotency_key` never counts twice and returns the first response; the same key "
        "with a different answer is 409. The order shown is the one recorded at assignment."
    )
    if inline:
        # SQLite has one writer at a time anyway: running the short write transaction on the
        # event loop avoids a worker-thread hop per vote (about half the server CPU per vote).
        @app.post("/api/votes", response_model=None, description=vote_doc)
        async def post_vote(vote: VoteIn, request: Request) -> JSONResponse:
            return vote_now(vote, request)
    else:

        @app.post("/api/votes", response_model=None, description=vote_doc)
        def post_vote_threaded(vote: VoteIn, request: Request) -> JSONResponse:
            return vote_now(vote, request)

    @app.get("/api/votes/mine")
    def votes_mine(request: Request) -> list[dict[str, Any]]:
        ann = annotator(request)
        with factory() as s:
            return store.my_votes(s, ann)

    # ---------------- admin API (authenticated by Guard)

    def import_path(raw: str) -> Path:
        if settings.import_dir is None:
            raise HTTPException(
                403,
                "server-side paths are off: start the server with --import-dir DIR, or send "
                "rows, or upload the file (POST /api/campaigns/upload)",
            )
        root = settings.import_dir.resolve()
        p = (root / raw).resolve()
        if not p.is_relative_to(root):
            raise HTTPException(403, "path is outside the import folder (--import-dir)")
        if not p.exists():
            raise HTTPException(422, f"{raw}: no such file in the import folder")
        return p

    def create_from(items: Any, spec: store.CampaignSpec) -> dict[str, Any]:
        from prefkit.serve.items import import_summary

        info = import_summary(items)
        with factory() as s:
            camp = store.create_campaign(s, items.table, spec, info)
            return {**campaign_json(camp, s), "import": info}

    def new_campaign_sync(raw: bytes) -> dict[str, Any]:
        from prefkit.io.base import InputError
        from prefkit.schema import SchemaError
        from prefkit.serve.items import read_items, rows_to_items

        try:
            body = CampaignIn.model_validate_json(raw)
        except ValidationError as e:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err.get("loc", ()))} for err in e.errors()]
            ) from None
        if (body.path is None) == (body.rows is None):
            raise HTTPException(422, "give exactly one of path or rows")
        try:
            if body.path is not None:
                items = read_items(import_path(body.path))
            else:
                items = rows_to_items(body.rows or [])
        except (InputError, SchemaError) as e:
            raise HTTPException(422, str(e)) from e
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
        return create_from(items, spec)

    campaign_schema = CampaignIn.model_json_schema()

    @app.post(
        "/api/campaigns",
        dependencies=[Admin],
        status_code=201,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": campaign_schema}},
            }
        },  # fmt: skip
    )
    async def new_campaign(request: Request) -> dict[str, Any]:
        """Create a campaign from `rows` or a server-side `path` (under --import-dir). Every
        row goes through prefkit's readers: rejected rows are counted in `import`."""
        raw = await request.body()
        return await run_in_threadpool(new_campaign_sync, raw)

    @app.post(
        "/api/campaigns/upload",
        dependencies=[Admin],
        status_code=201,
    )
    def upload_campaign(
        file: UploadFile,
        name: Annotated[str, Form(min_length=1, max_length=200)],
        overlap: Annotated[int, Form(ge=1, le=1000)] = 1,
        policy: Annotated[Policy, Form()] = "least_judged",
        questions: Annotated[str, Form(max_length=200)] = ",".join(store.DEFAULT_QUESTIONS),
        guidelines: Annotated[str, Form(max_length=100_000)] = "",
        gold_from_outcome: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        """Create a campaign from an uploaded file in any format prefkit reads."""
        import shutil
        import tempfile

        from prefkit.io.base import InputError
        from prefkit.schema import SchemaError
        from prefkit.serve.items import read_items

        for field, value in (("name", name), ("guidelines", guidelines), ("questions", questions)):
            try:
                _clean_text(value)
            except ValueError as e:
                raise store.invalid(field, str(e)) from None
        shown = re.sub(r"[^\w.\- ]", "_", file.filename or "upload")[:100]
        suffix = "".join(Path(shown).suffixes[-2:])
        suffix = suffix if re.fullmatch(r"(\.[A-Za-z0-9]{1,10}){0,2}", suffix) else ""
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"upload{suffix}"
            with path.open("wb") as out:
                shutil.copyfileobj(file.file, out, 1 << 20)
            try:
                items = read_items(path)
            except (InputError, SchemaError) as e:
                raise HTTPException(422, str(e).replace(str(path), shown)) from e
            items.rejects = [
                dataclasses.replace(r, file=shown, reason=r.reason.replace(str(path), shown))
                for r in items.rejects
            ]
        spec = store.CampaignSpec(
            name=name,
            questions=tuple(q.strip() for q in questions.split(",") if q.strip()),
            guidelines=guidelines,
            overlap=overlap,
            policy=policy,
            gold_from_outcome=gold_from_outcome,
        )
        return create_from(items, spec)

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
            "closed": camp.closed_at is not None,
            "closed_at": camp.closed_at.isoformat() if camp.closed_at else None,
            **st,
        }

    @app.get("/api/campaigns", dependencies=[Admin])
    def list_campaigns(s: DB) -> list[dict[str, Any]]:
        return [campaign_json(c, s) for c in s.scalars(select(Campaign).order_by(Campaign.id))]

    @app.get("/api/campaigns/{cid}", dependencies=[Admin])
    def get_campaign(cid: Id, s: DB) -> dict[str, Any]:
        camp = store.get_campaign(s, cid)
        return {**campaign_json(camp, s), "import": camp.import_info}

    @app.post("/api/campaigns/{cid}/close", dependencies=[Admin])
    def close_campaign(cid: Id, s: DB) -> dict[str, Any]:
        """Close: no new tasks, votes answered 409 (a retry of an accepted vote still gets
        its first response)."""
        return campaign_json(store.set_closed(s, cid, True), s)

    @app.post("/api/campaigns/{cid}/reopen", dependencies=[Admin])
    def reopen_campaign(cid: Id, s: DB) -> dict[str, Any]:
        return campaign_json(store.set_closed(s, cid, False), s)

    @app.post("/api/campaigns/{cid}/annotators", dependencies=[Admin], status_code=201)
    def new_annotator(cid: Id, body: InviteIn, s: DB) -> dict[str, Any]:
        ann, token = store.invite(s, cid, body.name, body.expires_in_s)
        return {
            **store.annotator_json(ann),
            "token": token,
            "invite_url": f"{settings.base_url.rstrip('/')}/i/{token}",
            "invite_path": f"/i/{token}",
        }

    @app.get("/api/campaigns/{cid}/annotators", dependencies=[Admin])
    def list_annotators(cid: Id, s: DB) -> list[dict[str, Any]]:
        return [store.annotator_json(a) for a in store.annotators(s, cid)]

    @app.post("/api/campaigns/{cid}/annotators/{aid}/revoke", dependencies=[Admin])
    def revoke_annotator(cid: Id, aid: Id, s: DB) -> dict[str, Any]:
        """Revoke an invitation: the token is refused from the next request on."""
        return store.annotator_json(store.revoke(s, aid, cid))

    @app.get("/api/campaigns/{cid}/stats", dependencies=[Admin])
    def campaign_stats(cid: Id, s: DB) -> dict[str, Any]:
        return store.stats(s, cid)

    @app.get("/api/campaigns/{cid}/votes", dependencies=[Admin])
    def campaign_votes(cid: Id, s: DB) -> list[dict[str, Any]]:
        store.get_campaign(s, cid)
        rows = s.scalars(select(Vote).where(Vote.campaign_id == cid).order_by(Vote.id))
        return [
            {**store.vote_response(v), "annotator_id": v.annotator_id, "strength": v.strength}
            for v in rows
        ]

    @app.get("/api/campaigns/{cid}/export", dependencies=[Admin])
    def export(
        cid: Id, s: DB, format: Literal["parquet", "jsonl", "trl"] = Query("parquet")
    ) -> Response:
        from prefkit.serve.export import ExportError, export_bytes

        try:
            data, media, ext = export_bytes(store.export_table(s, cid), format)
        except ExportError as e:
            raise HTTPException(422, str(e)) from e
        return Response(
            data,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="campaign-{cid}.{ext}"'},
        )

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
