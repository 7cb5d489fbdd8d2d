"""Which rows are broken? Empty or whitespace responses, truncated responses (cut mid-sentence
or at a length cap), encoding debris (mojibake, replacement characters, control bytes) and
prompts that are only a template.

Issues (check `degenerate`):

- `empty_response` (error, 1.0): a response is missing, empty or only whitespace.
- `truncated` (warning): 0.9 when a response's length equals a cap many responses hit
  (≥ max(3, 0.1%) of responses share the maximum length, which is ≥ 100 characters); 0.6 when a response of ≥ 200
  characters ends in the middle of a sentence (a letter, digit or comma, no closing
  punctuation) while it contains sentence punctuation elsewhere.
- `encoding_debris` (warning, 0.8): mojibake sequences (`Ã©`, `â€™`, `Â `), U+FFFD or
  C0 control characters in the prompt or a response.
- `template_only` (warning, 0.9): the prompt is empty once chat/instruction markers are
  removed, or it still has an unfilled placeholder (`{input}`, `{{question}}`, `<PLACEHOLDER>`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.audit.findings import Findings, concat_rows, distinct_rows, flag_rows, make_rows
from prefkit.audit.frame import Frame

CHECK = "degenerate"

MOJIBAKE = (
    r"Ã[\x{80}-\x{BF}]|Ã[©¨¯´¶¼½¾]|â€[™œ\x{9D}“”˜¦]|Â[\x{A0}-\x{BF} ]|\x{FFFD}"
    r"|[\x{00}-\x{08}\x{0B}\x{0C}\x{0E}-\x{1F}]"
)
MARKERS = (
    r"(?i)(###\s*(instruction|input|response|question|answer|context)\s*:?"
    r"|\b(human|user|assistant|system|question|answer|input|output)\s*:"
    r"|<\|?[a-z_]+\|?>|\[/?inst\]|<</?sys>>)"
)
PLACEHOLDER = (
    r"(?i)\{\{\s*[a-z_][a-z0-9_ ]*\s*\}\}"
    r"|\{(input|instruction|question|prompt|query|context|document|text|user_input|answer)\}"
    r"|<(placeholder|insert[^>]*|your [a-z ]+)>|\[(insert|your) [^\]]+\]"
)


def _np(x: pa.Array) -> NDArray[np.bool_]:
    return np.asarray(pc.fill_null(x, False), dtype=bool)


def find_degenerate(f: Frame) -> Findings:
    parts: list[pa.Table] = []
    summary: dict[str, Any] = {}
    n = f.n
    if n == 0:
        return Findings(CHECK, summary={"rows_flagged": 0})
    if f.extra.get("raw_released"):
        raise ValueError("the frame's raw responses were released (Frame.release_raw)")
    if f.has_text:
        ea = np.asarray(f.row["empty_a"], dtype=bool)  # audit.rowwise.row_stats
        eb = np.asarray(f.row["empty_b"], dtype=bool)
        empty = np.flatnonzero(ea | eb)
        flag_rows(
            parts,
            summary,
            "empty_response_rows",
            f.take_ids(empty),
            CHECK,
            "empty_response",
            1.0,
            "error",
            [
                "both responses are empty" if x and y else f"response_{'a' if x else 'b'} is empty"
                for x, y in zip(ea[empty], eb[empty], strict=True)
            ],
        )
        from prefkit.audit.truncation import truncation_scores_chunks

        code = np.concatenate([f.a_raw, f.b_raw])
        # the distinct responses as written, read back a chunk at a time (frame.TextSet)
        t_score, t_reason, found = truncation_scores_chunks(f.raw_set.chunks(), len(f.raw_set))
        summary["length_cap"] = found["length_cap"]
        summary["word_limit"] = found["word_limit"]
        sc = np.where(code >= 0, t_score[np.maximum(code, 0)], 0.0)
        sa, sb = sc[:n], sc[n:]
        score = np.maximum(sa, sb)
        trunc = np.flatnonzero(score > 0)
        summary["truncated_rows"] = int(trunc.size)
        summary["truncated_at_cap_rows"] = int((score >= 0.9).sum())
        if trunc.size:
            why = [
                f"response_{'a' if sa[i] >= sb[i] else 'b'} "
                + t_reason[int(code[i] if sa[i] >= sb[i] else code[n + i])]
                for i in trunc.tolist()
            ]
            parts.append(
                make_rows(CHECK, "truncated", f.take_ids(trunc), score[trunc], "warning", why)
            )
    else:
        summary["empty_response_rows"] = 0
        summary["truncated_rows"] = 0
    from prefkit.audit.rowwise import DEBRIS_WHERE

    code = np.asarray(f.row["debris"], dtype=np.int64)
    where = np.asarray(DEBRIS_WHERE, dtype=object)[code]
    deb = np.flatnonzero(code > 0)
    flag_rows(
        parts,
        summary,
        "encoding_debris_rows",
        f.take_ids(deb),
        CHECK,
        "encoding_debris",
        0.8,
        "warning",
        [f"mojibake / replacement / control characters in {w}" for w in where[deb]],
    )
    # template-only prompts, decided once per distinct prompt
    placeholder = np.zeros(len(f.prompt_set), dtype=bool)
    tmpl = np.zeros(len(f.prompt_set), dtype=bool)
    for pcodes, prompts in f.prompt_set.chunks():  # a chunk of distinct prompts at a time
        stripped = pc.replace_substring_regex(prompts, MARKERS, "")
        stripped = pc.replace_substring_regex(stripped, r"[^\p{L}\p{N}]+", "")
        bare = _np(pc.less(pc.utf8_length(stripped), 3))
        ph = _np(pc.match_substring_regex(prompts, PLACEHOLDER))
        placeholder[pcodes] = ph
        tmpl[pcodes] = bare | ph
    if tmpl.any():
        rows = f.prompt_rows(tmpl)
        rows = rows[f.prompt_valid[rows]]
        flag_rows(
            parts,
            summary,
            "template_only_rows",
            f.take_ids(rows),
            CHECK,
            "template_only",
            0.9,
            "warning",
            [
                "prompt has an unfilled placeholder"
                if placeholder[c]
                else "prompt is only a template (no content)"
                for c in f.prompt_code[rows]
            ],
        )
    else:
        summary["template_only_rows"] = 0
    rows_t = concat_rows(parts)
    summary["rows_flagged"] = distinct_rows(rows_t)
    return Findings(CHECK, rows_t, summary)
