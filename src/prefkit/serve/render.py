"""Untrusted model outputs → safe HTML: Markdown (markdown-it-py, raw HTML off), code
highlighted with CSS classes (Pygments), then sanitised by nh3 (an allow-list). Remote images
are never loaded: they become a link the annotator may choose to open."""

from __future__ import annotations

import html
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt

TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "span", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody",
    "tr", "th", "td", "div", "sup", "sub",
}  # fmt: skip
# no `style` attribute anywhere: the CSP forbids inline styles (table alignment is dropped)
ATTRS = {"a": {"href", "title"}, "span": {"class"}, "code": {"class"}, "pre": {"class"},
         "div": {"class"}}  # fmt: skip


def _highlight(code: str, lang: str, _attrs: Any) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    out: str = highlight(code, lexer, HtmlFormatter(nowrap=True, classprefix="hl-"))
    return f'<pre class="hl"><code class="language-{html.escape(lang)}">{out}</code></pre>'


def _image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    tok = tokens[idx]
    src = str(tok.attrGet("src") or "")
    alt = html.escape(tok.content or "image")
    if src.startswith(("http://", "https://")):
        return f'<a href="{html.escape(src)}">[remote image: {alt}]</a>'
    return f"[image: {alt}]"


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    md.enable("table").enable("strikethrough")
    md.add_render_rule("image", _image)
    return md


def render_markdown(text: str) -> str:
    """Safe HTML for untrusted Markdown: no script, no event handler, no javascript: URL."""
    raw = _md().render(text or "")
    return nh3.clean(
        raw,
        tags=TAGS,
        attributes=ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_messages(messages: list[dict[str, Any]] | None) -> str:
    """A message list as HTML blocks, role labels escaped, contents through `render_markdown`."""
    parts = []
    for m in messages or []:
        role = html.escape(str(m.get("role") or ""))
        body = render_markdown(str(m.get("content") or ""))
        parts.append(f'<div class="msg msg-{role}"><div class="role">{role}</div>{body}</div>')
    return nh3.clean(
        "".join(parts),
        tags=TAGS,
        attributes=ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def highlight_css() -> str:
    from pygments.formatters import HtmlFormatter

    css: str = HtmlFormatter(classprefix="hl-").get_style_defs(".hl")
    return css
