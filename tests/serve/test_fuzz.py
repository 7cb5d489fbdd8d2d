"""Property-based fuzzing (hypothesis) of every route in /openapi.json: bodies generated from
each route's own schema and mixed with hostile values (NaN, ±Infinity, integers ≥ 2^63,
lone surrogates, NUL, wrong types, deep nesting, broken JSON), hostile path and query
values, with and without credentials. Every answer is < 500 and carries the security
headers, and the database is unchanged unless the answer is 2xx."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from prefkit.serve.models import Annotator, Base, Campaign
from prefkit.serve.security import SECURITY_HEADERS
from tests.serve.conftest import ADMIN, create_campaign, invite, make_client, next_task, pair_rows

NASTY: list[Any] = [
    math.nan, math.inf, -math.inf, 2**63, 2**64, -(2**63) - 1, 10**30, 1e300, -1, 0, 0.5,
    "\ud800", "\udfff", "a\x00b", "", " ", "x" * 300, "../../etc/passwd", "1e3", "NaN",
    "<script>alert(1)</script>", "' OR 1=1 --", True, False, None, [], {}, [[[]]],
    {"$ref": "x"}, [None] * 3, {"a": math.nan},
]  # fmt: skip
nasty = st.sampled_from(NASTY)
SWEEP = [
    math.nan,
    math.inf,
    2**64,
    "\ud800",
    "a\x00b",
    None,
    [],
    {},
    True,
    "x" * 300,
]  # one of a kind
ids = st.integers(min_value=-2, max_value=12) | nasty
HOSTILE_BY_TYPE: dict[str, list[Any]] = {
    "string": ["\ud800", "\udfff", "a\x00b", "", "é" * 30_000, "x" * 200_000, "\u202e", "%00", 7],
    "integer": [2**63, 2**64, -(2**63) - 1, 10**400, -1, 0, 1.5, "1", True, math.nan],
    "number": [math.nan, math.inf, -math.inf, 10**400, -0.0, 1.0000001, "0.5", True, None],
    "boolean": ["true", 1, None, [], "\ud800"],
    "array": [[None] * 10_000, [[[[[[]]]]]], "[]", {}, [math.nan], ["\ud800"] * 3],
    "object": [{"\ud800:a": 3}, {"x" * 1000: 1}, {str(i): i for i in range(500)}, [], "{}"],
}


def _type(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    schema = _resolve(schema, spec)
    for sub in schema.get("anyOf", []):
        t = _type(sub, spec)
        if t != "null":
            return t
    return str(schema.get("type", "null"))


def hostile(schema: dict[str, Any], spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a field of this type must refuse, most of them of its own kind."""
    own = HOSTILE_BY_TYPE.get(_type(schema, spec))
    return st.sampled_from(own) | nasty if own else nasty


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"].get(name) or schema.get("$defs", {}).get(name, {})
    return schema


def from_schema(schema: dict[str, Any], spec: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:  # fmt: skip
    """Values for a JSON schema (the subset pydantic writes), each position sometimes
    replaced by a hostile value."""
    schema = _resolve(schema, spec)
    if depth > 4:
        return nasty
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, spec, depth + 1) for s in schema[key]]) | nasty
    if "const" in schema:
        return st.just(schema["const"]) | nasty
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | nasty
    t = schema.get("type")
    if t == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: from_schema(v, spec, depth + 1) for k, v in props.items() if k in required}
        optional = {k: from_schema(v, spec, depth + 1) for k, v in props.items() if k not in required}  # fmt: skip
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            keys = st.text(max_size=20) | st.sampled_from(["helpfulness:a", "a", "b", "0", "\ud800:a"])  # fmt: skip
            return st.dictionaries(keys, from_schema(extra, spec, depth + 1), max_size=4) | nasty
        return st.fixed_dictionaries(fixed, optional=optional) | nasty
    if t == "array":
        items = from_schema(schema.get("items", {}), spec, depth + 1)
        return st.lists(items, max_size=min(schema.get("maxItems", 5), 5)) | nasty
    if t == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True) | nasty
        return st.text(max_size=min(schema.get("maxLength", 40), 40)) | nasty
    if t == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.integers(min_value=lo if lo is not None and lo > -1000 else -5, max_value=min(hi if hi is not None else 20, 20)) | ids  # fmt: skip
    if t == "number":
        return st.floats(allow_nan=True, allow_infinity=True) | nasty
    if t == "boolean":
        return st.booleans() | nasty
    return st.none() | nasty


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _snapshot(engine: Any) -> list[Any]:
    with Session(engine) as s:
        return [
            (
                t.name,
                [tuple(r) for r in s.execute(select(t).order_by(*t.primary_key.columns)).all()],
            )  # fmt: skip
            for t in Base.metadata.sorted_tables
        ]


def _encode(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode("utf-8")


def _good_bodies(item_id: int) -> dict[str, list[dict[str, Any]]]:
    """Valid bodies per route: fuzzing starts from them and changes one field at a time, so
    it reaches the handlers' own checks (and the database), not only the validators."""
    return {
        "/api/votes": [
            {"item_id": item_id, "outcome": "a", "strength": 0.8, "rationale": "fine",
             "likert": {"helpfulness:a": 3}, "thumbs": {"a": True},
             "spans": [{"response": "a", "start": 0, "end": 3, "label": "typo"}]},
            {"item_id": item_id, "outcome": "tie"},
        ],
        "/api/campaigns": [
            {"name": "fuzz", "rows": [{"prompt": "p", "response_a": "a", "response_b": "b"}]},
            {"name": "fuzz-k", "rows": [{"prompt": "p", "responses": ["a", "b", "c"]}], "overlap": 2},
        ],
        "/api/campaigns/{cid}/annotators": [{"name": "bob", "expires_in_s": 60.0}],
    }  # fmt: skip


def _body(draw: Callable[..., Any], path: str, schema: dict[str, Any], spec: dict[str, Any], good: dict[str, list[dict[str, Any]]]) -> Any:  # fmt: skip
    mode = draw(st.sampled_from(["good", "mutated", "mutated", "schema"]) if path in good else st.just("schema"))  # fmt: skip
    if mode == "schema":
        return draw(from_schema(schema, spec))
    body = dict(draw(st.sampled_from(good[path])))
    if path == "/api/votes":
        body["idempotency_key"] = draw(st.from_regex(r"[a-z0-9]{12,20}", fullmatch=True))
    if mode == "mutated":
        props = _resolve(schema, spec).get("properties", {})
        key = draw(st.sampled_from(sorted(props) + ["unknown_field"]))
        sub = props.get(key, {})
        body[key] = draw(hostile(sub, spec) if draw(st.integers(0, 3)) else from_schema(sub, spec))  # fmt: skip
    return body


def _request(draw: Callable[..., Any], path: str, method: str, op: dict[str, Any], spec: dict[str, Any], creds: dict[str, str], good: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """A request for one operation: path and query from its parameters, a body from its
    request schema, one of the credentials (or none, or a wrong one)."""
    url = path
    query: list[str] = []
    for p in op.get("parameters", []):
        value = draw(st.integers(1, 3) | from_schema(p.get("schema", {}), spec) | ids)
        text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else value
        # percent-encoded bytes as a client sends them (lone surrogates as invalid UTF-8)
        raw = quote(text.encode("utf-8", "surrogatepass"), safe="")
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", raw or "x")
        elif p["in"] == "query" and draw(st.booleans()):
            query.append(f"{p['name']}={raw}")
    if query:
        url += "?" + "&".join(query)
    right = "annotator" if path.startswith(("/api/me", "/api/task", "/api/votes")) else "admin"
    who = draw(st.sampled_from([right, right, right, "admin", "annotator", "none", "wrong"]))
    headers = {"Authorization": f"Bearer {creds.get(who, 'not-a-token')}"} if who != "none" else {}  # fmt: skip
    kw: dict[str, Any] = {"headers": headers}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _body(draw, path, content["application/json"].get("schema", {}), spec, good)
        raw_body = _encode(body)
        kw["content"] = draw(st.sampled_from([raw_body] * 6 + [raw_body[: len(raw_body) // 2], b"\xff\xfe", b""]))  # fmt: skip
        ctype = draw(st.sampled_from(["application/json"] * 6 + ["text/plain", "application/json; charset=latin-1"]))  # fmt: skip
        kw["headers"] = {**headers, "Content-Type": ctype}
    elif "multipart/form-data" in content:
        schema = _resolve(content["multipart/form-data"]["schema"], spec)
        fields = {"name": "upload"}
        for name, sub in schema.get("properties", {}).items():
            if name == "file" or not draw(st.booleans()):
                continue
            value = draw(from_schema(sub, spec))
            fields[name] = value if isinstance(value, str) else json.dumps(value, allow_nan=True)
        file_body = draw(st.sampled_from([b'{"prompt": "p", "response_a": "a", "response_b": "b"}\n'] * 3 + [b"", b"\x00\xff", b'[{"prompt": 1}]', b"prompt,response_a\n1,2\n"]))  # fmt: skip
        name = draw(st.sampled_from(["x.jsonl", "x.csv", "../../x.json", "\u00e9.parquet", "x"]))
        kw["data"] = {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in fields.items()}  # fmt: skip
        if draw(st.integers(0, 4)):
            kw["files"] = {"file": (name, file_body)}
    return url, kw


def _fuzz(db_url: str, examples: int) -> None:
    with make_client(db_url) as c:
        c.__dict__["_raise_server_exceptions"] = False
        camp = create_campaign(c, pair_rows(4), questions=["pairwise", "strength", "likert", "thumbs", "rationale", "spans"])  # fmt: skip
        create_campaign(c, [{"prompt": "k", "responses": ["x", "y", "z"]}], name="k")
        tok = invite(c, camp["id"], "alice")["token"]
        good = _good_bodies(next_task(c, tok)["item_id"])
        spec = c.get("/openapi.json").json()
        ops = _operations(spec)
        routes = {(r.path, m) for r in c.app.routes if getattr(r, "include_in_schema", False) for m in getattr(r, "methods", ()) if m != "HEAD"}  # fmt: skip
        assert {(p, m) for p, m, _ in ops} == routes  # every route of the API is fuzzed
        creds = {"admin": ADMIN, "annotator": tok}
        engine = c.app.state.engine
        seen: dict[str, set[int]] = {}

        def reset() -> None:  # keep the seeded annotators and campaigns usable
            with Session(engine) as s:
                revoked = s.scalar(select(Annotator.id).where(Annotator.revoked != 0).limit(1))
                closed = s.scalar(select(Campaign.id).where(Campaign.closed_at.is_not(None)).limit(1))  # fmt: skip
                if revoked is not None or closed is not None:
                    s.execute(update(Annotator).values(revoked=0))
                    s.execute(update(Campaign).values(closed_at=None))
                    s.commit()

        def fuzz_one(path: str, method: str, op: dict[str, Any]) -> Callable[[], None]:
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(st.data())
            def one(data: st.DataObject) -> None:
                url, kw = _request(data.draw, path, method, op, spec, creds, good)
                check(method, url, kw)
                codes = seen.pop(f"{method} {url}")
                seen.setdefault(f"{method} {path}", set()).update(codes)

            return one

        def check(method: str, url: str, kw: dict[str, Any]) -> None:
            reset()
            before = _snapshot(engine)
            r = c.request(method, url, **kw)
            seen.setdefault(f"{method} {url}", set()).add(r.status_code)
            assert r.status_code < 500, (method, url, kw.get("content"), r.text[:500])
            for k, v in SECURITY_HEADERS.items():
                assert r.headers.get(k) == v, (method, url, r.status_code, k)
            if not 200 <= r.status_code < 300:
                assert _snapshot(engine) == before, (method, url, r.status_code, r.text[:300])

        # a sweep first: every field of every valid body replaced by every hostile value of
        # its type (and of no type), one at a time
        for path, method, op in ops:
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")  # fmt: skip
            if path not in good or schema is None:
                continue
            props = _resolve(schema, spec).get("properties", {})
            who = creds["annotator" if path == "/api/votes" else "admin"]
            url = path.replace("{cid}", str(camp["id"]))
            for n, body in enumerate(good[path]):
                for key, sub in props.items():
                    for m, bad in enumerate([*HOSTILE_BY_TYPE.get(_type(sub, spec), []), *SWEEP]):  # fmt: skip
                        sent = {**body, key: bad, "idempotency_key": f"sweep-{n}-{key}-{m}"}
                        check(method, url, {"content": _encode(sent), "headers": {"Authorization": f"Bearer {who}", "Content-Type": "application/json"}})  # fmt: skip
        for path, method, op in ops:
            fuzz_one(path, method, op)()
        # the fuzzing reached the handlers, not only the validators: 2xx on most routes
        fuzzed = {f"{m} {p}" for p, m, _ in ops}
        ok = [k for k in fuzzed if any(200 <= x < 300 for x in seen[k])]
        assert len(ok) >= len(ops) * 2 // 3, seen


@pytest.mark.slow
def test_fuzz_every_route_sqlite(sqlite_url: str) -> None:
    _fuzz(sqlite_url, examples=50)


@pytest.mark.slow
@pytest.mark.postgres
def test_fuzz_every_route_postgresql(pg_server: str) -> None:
    from prefkit.serve.localpg import new_database

    _fuzz(new_database(pg_server), examples=25)
