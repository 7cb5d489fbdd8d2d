"""Verdict and rating parsers on answers in the forms judges actually write."""

from __future__ import annotations

import math

import pytest

from prefkit.judge.parse import first_probability, parse_pairwise, parse_scores
from prefkit.judge.templates import TemplateError, load_template, split_messages


@pytest.mark.parametrize(
    ("text", "winner", "grade", "form"),
    [
        ("Assistant B is clearly better.\n\nMy final verdict is: [[B>>A]]", "second", 2, "arena"),
        ("Both fine, A slightly more complete. [[A>B]]", "first", 1, "arena"),
        ("[[A=B]]", "tie", None, "arena"),
        ("B wins: [[A<B]]", "second", 1, "arena"),
        # MT-Bench: the format is restated first; the last verdict counts
        (
            'Output "[[A]]" if A is better, "[[B]]" if B is better.\nVerdict: [[B]]',
            "second",
            None,
            "brackets",
        ),
        ("It's a tie. [[C]]", "tie", None, "brackets"),
        ("Neither answer is acceptable. [[BOTH_BAD]]", "both_bad", None, "brackets"),
        ('```json\n{"reasoning": "A is wrong", "winner": "B"}\n```', "second", None, "json"),
        ('{"preference": "Output (a)"}', "first", None, "json"),
        ("Feedback: Response A misses the point. [RESULT] B", "second", None, "result"),
        ("Output (b)", "second", None, "output"),
        ("**A**", "first", None, "bare"),
        ("Tie.", "tie", None, "bare"),
        ("Response 2", "second", None, "bare"),
        ("2", "second", None, "bare"),
    ],
)
def test_pairwise_forms(text: str, winner: str, grade: int | None, form: str) -> None:
    v = parse_pairwise(text)
    assert v is not None and (v.winner, v.grade, v.form) == (winner, grade, form)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Both answers have merits; it is hard to say.",
        "[[A>A]]",
        "A long discussion that mentions A and B but never decides between them at all.",
    ],  # fmt: skip
)
def test_pairwise_without_verdict(text: str) -> None:
    assert parse_pairwise(text) is None


def test_scores_forms() -> None:
    aspects = ["helpfulness", "honesty", "instruction_following", "truthfulness"]
    text = (
        "Helpful and accurate.\n**Helpfulness**: 4\nHonesty rating: 5\n"
        "- Instruction following: 3/5\ntruthfulness = 4\n"
    )
    assert parse_scores(text, aspects) == {
        "helpfulness": 4.0, "honesty": 5.0, "instruction_following": 3.0, "truthfulness": 4.0,
    }  # fmt: skip
    js = '{"helpfulness": {"rating": 2, "rationale": "x"}, "honesty": 1}'
    assert parse_scores(js, ["helpfulness", "honesty"]) == {"helpfulness": 2.0, "honesty": 1.0}
    assert parse_scores("Helpfulness: 9", ["helpfulness"]) == {}  # out of the 1..5 scale
    assert parse_scores("Feedback: good. [RESULT] 4", ["overall"]) == {"overall": 4.0}
    assert parse_scores("Score: 3", ["overall"]) == {"overall": 3.0}
    assert parse_scores("7/10", ["rating"], 1, 10) == {"rating": 7.0}
    assert parse_scores("Helpfulness: 4", ["helpfulness", "honesty"]) == {"helpfulness": 4.0}


def test_first_probability_from_token_logprobs() -> None:
    text = "Verdict: [[A]]"
    start = text.index("A]]")
    toks = [{"token": "Verdict: [[", "logprob": 0.0, "top": []},
            {"token": "A", "logprob": math.log(0.7),
             "top": [["A", math.log(0.7)], ["B", math.log(0.2)], ["C", math.log(0.1)]]},
            {"token": "]]", "logprob": 0.0, "top": []}]  # fmt: skip
    assert first_probability(toks, text, start) == pytest.approx(0.7 / 0.9)
    assert first_probability(None, text, start) is None
    assert first_probability(toks[:1], text, start) is None


def test_templates_render_messages_and_refuse_unknown_variables(tmp_path: object) -> None:
    t = load_template("mtbench")
    msgs = t.render(prompt="Q?", response_a="first", response_b="second")
    assert [r for r, _ in msgs] == ["system", "user"]
    assert "first" in msgs[1][1] and msgs[1][1].index("first") < msgs[1][1].index("second")
    assert t.mode == "pairwise" and len(t.sha256) == 64
    uf = load_template("ultrafeedback")
    assert uf.aspects == ("helpfulness", "honesty", "instruction_following", "truthfulness")
    with pytest.raises(TemplateError, match="reference"):
        load_template("reference").check("pairwise")
    with pytest.raises(TemplateError, match="not a built-in"):
        load_template("no-such-template")
    assert split_messages("hello\n<|system|>\nbe fair\n<|user|>\nQ") == (
        ("user", "hello"), ("system", "be fair"), ("user", "Q"),
    )  # fmt: skip
