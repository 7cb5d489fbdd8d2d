"""Judge prompt templates: Jinja2 files shipped with prefkit, or your own (`--template FILE`).

A template renders to the chat messages of one request. Lines `<|system|>`, `<|user|>` and
`<|assistant|>` start a message with that role; text before the first marker is a user
message. A first-line comment `{#- prefkit: mode=rubric aspects=a,b -#}` declares the mode
the template is written for and its default aspects.

Variables (undefined ones are an error before any call is made):

- pairwise and reference: `prompt` (the conversation as text), `response_a` (the response
  shown first), `response_b` (shown second); reference adds `reference`;
- rubric: `prompt`, `response`, `aspects` (list of names), `scale_min`, `scale_max`.

The template's identity is the SHA-256 of its source text (`Template.sha256`), recorded in
every vote it produced.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

MODES = ("pairwise", "rubric", "reference")
BUILTIN = {
    "pairwise": "pairwise.j2",
    "mtbench": "mtbench.j2",
    "alpacaeval": "alpacaeval.j2",
    "reference": "reference.j2",
    "ultrafeedback": "ultrafeedback.j2",
    "prometheus": "prometheus.j2",
}
DEFAULT_FOR_MODE = {"pairwise": "pairwise", "reference": "reference", "rubric": "ultrafeedback"}
VARIABLES = {
    "pairwise": frozenset({"prompt", "response_a", "response_b"}),
    "reference": frozenset({"prompt", "response_a", "response_b", "reference"}),
    "rubric": frozenset({"prompt", "response", "aspects", "scale_min", "scale_max"}),
}
_ROLE = re.compile(r"^<\|(system|user|assistant)\|>[ \t]*$", re.M)
_HEADER = re.compile(r"\{#-?\s*prefkit:([^#]*)-?#\}")


class TemplateError(ValueError):
    """A template that cannot be used: unknown name, unreadable file, bad Jinja2 syntax, or a
    variable prefkit does not provide."""


@dataclass(frozen=True)
class Template:
    name: str  # built-in name or the file path
    source: str
    mode: str | None  # declared in the header, None when not declared
    aspects: tuple[str, ...] = ()
    _compiled: Any = field(default=None, compare=False, repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def variables(self) -> set[str]:
        from jinja2 import Environment, meta

        return set(meta.find_undeclared_variables(Environment().parse(self.source)))

    def check(self, mode: str) -> None:
        """Raise TemplateError if the template uses a variable `mode` does not provide."""
        unknown = sorted(self.variables() - VARIABLES[mode])
        if unknown:
            raise TemplateError(
                f"template {self.name}: uses {', '.join('{{ ' + u + ' }}' for u in unknown)}, "
                f"which {mode} mode does not provide (available: "
                f"{', '.join(sorted(VARIABLES[mode]))})"
            )

    def render(self, **variables: Any) -> tuple[tuple[str, str], ...]:
        """The chat messages ((role, content), ...) for these variables."""
        from jinja2 import UndefinedError

        try:
            text = str(self._compiled.render(**variables))
        except UndefinedError as e:
            raise TemplateError(f"template {self.name}: {e}") from None
        return split_messages(text)


def split_messages(text: str) -> tuple[tuple[str, str], ...]:
    parts = _ROLE.split(text)
    out: list[tuple[str, str]] = []
    head = parts[0].strip()
    if head:
        out.append(("user", head))
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        body = body.strip("\n").strip()
        if body:
            out.append((role, body))
    return tuple(out)


def _compile(name: str, source: str) -> Template:
    from jinja2 import Environment, StrictUndefined, TemplateSyntaxError

    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    try:
        compiled = env.from_string(source)
    except TemplateSyntaxError as e:
        raise TemplateError(f"template {name}, line {e.lineno}: {e.message}") from None
    mode: str | None = None
    aspects: tuple[str, ...] = ()
    m = _HEADER.search(source[:500])
    if m:
        for item in m.group(1).split():
            k, _, v = item.partition("=")
            if k == "mode" and v in MODES:
                mode = v
            elif k == "aspects" and v:
                aspects = tuple(a.strip() for a in v.split(",") if a.strip())
    return Template(name, source, mode, aspects, compiled)


def load_template(name_or_path: str) -> Template:
    """A built-in template by name (see `BUILTIN`) or a Jinja2 file."""
    if name_or_path in BUILTIN:
        src = resources.files("prefkit.judge").joinpath("templates", BUILTIN[name_or_path])
        return _compile(name_or_path, src.read_text(encoding="utf-8"))
    p = Path(name_or_path)
    if not p.is_file():
        raise TemplateError(
            f"template {name_or_path}: not a built-in template ({', '.join(BUILTIN)}) "
            "and no such file"
        )
    try:
        source = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TemplateError(f"template {p}: cannot read ({e})") from None
    return _compile(str(p), source)
