"""The vectorised HH-RLHF path gives exactly the per-row path's table."""

from __future__ import annotations

import json
from pathlib import Path

from prefkit.io.base import ReadOptions
from prefkit.io.readers._base import RecordReader
from prefkit.io.readers.hh import HHReader, fast_read
from prefkit.schema import prompt_id
from tests.conftest import DATA
from tests.io._util import write_jsonl

HH = DATA / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"


def _both(path: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    reader = HHReader()
    fast = fast_read(path, ReadOptions(), reader)
    assert fast is not None
    slow = RecordReader.read(reader, path, ReadOptions())
    assert [r.line for r in fast.rejects] == [r.line for r in slow.rejects]
    return fast.table.to_pylist(), slow.table.to_pylist()


def test_fast_equals_slow_on_shared_file() -> None:
    fast, slow = _both(HH)
    assert len(fast) == 2312
    assert fast == slow


def test_fast_equals_slow_on_tricky_rows(tmp_path: Path) -> None:
    base = '\n\nHuman: Ünïcödé "quoted" back\\slash\tTAB  CAPS\n\nAssistant: ok\n\nHuman: next'
    ascii_base = '\n\nHuman: Say  "hi"\\n \t\tTO\r\nme\x0b now  \n\nAssistant: ok'
    rows = [
        {"chosen": ascii_base + " yes", "rejected": ascii_base + " no"},
        {"chosen": base + "\n\nAssistant: yes", "rejected": base + "\n\nAssistant: no"},
        {
            "chosen": "\n\nHuman: ＦＵＬＬ width\n\nAssistant: a",
            "rejected": "\n\nHuman: ＦＵＬＬ width\n\nAssistant: b",
        },
        # diverging before the last turn: handled per row, same result
        {
            "chosen": "\n\nHuman: q\n\nAssistant: x\n\nHuman: more\n\nAssistant: y",
            "rejected": "\n\nHuman: q\n\nAssistant: z\n\nHuman: other\n\nAssistant: w",
        },
        {
            "chosen": "\n\nHuman: ctrl \x1f char\n\nAssistant: a",
            "rejected": "\n\nHuman: ctrl \x1f char\n\nAssistant: b",
        },
        {"chosen": "no markers", "rejected": "none"},
        {
            "chosen": "\n\nHuman: empty answer\n\nAssistant:",
            "rejected": "\n\nHuman: empty answer\n\nAssistant: b",
        },  # "\n\nAssis" + "tant:" across two rows is no marker
        {
            "chosen": "\n\nHuman: q\n\nAssistant: a\n\nAssis",
            "rejected": "\n\nHuman: q\n\nAssistant: a\n\nAssis",
        },
        {"chosen": "tant: x\n\nHuman: y\n\nAssistant: z", "rejected": "tant: x\n\nAssistant: w"},
    ]
    fast, slow = _both(write_jsonl(tmp_path / "t.jsonl", rows))
    assert fast == slow
    assert len(fast) == 7
    for r in fast:
        assert r["prompt_id"] == prompt_id(r["prompt"])  # type: ignore[arg-type]
    assert fast[3]["prompt"] == [{"role": "user", "content": "q"}]
    assert json.dumps(fast[2]["response_b"]) == json.dumps([{"role": "assistant", "content": "b"}])


def test_trl_fast_equals_slow(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prefkit.io.readers.trl import TRLPreferenceReader

    std = [
        {"prompt": 'The  "sky"\tis', "chosen": " blue.", "rejected": ""},
        {"prompt": "Ünïcode", "chosen": "a", "rejected": "b"},
    ]
    conv = [
        {
            "prompt": [
                {"role": "system", "content": "Be brief"},
                {"role": "user", "content": "Color?"},
            ],
            "chosen": [{"role": "assistant", "content": "Blue"}],
            "rejected": [{"role": "assistant", "content": "Green"}],
        },
        {
            "prompt": [
                {"role": 'sys"tem\\', "content": " Lead  "},
                {"role": "usér", "content": "x"},
            ],
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}],
        },
    ]
    reader = TRLPreferenceReader()
    for i, rows in enumerate((std, conv)):
        for path in (tmp_path / f"t{i}.jsonl", tmp_path / f"t{i}.parquet"):
            if path.suffix == ".jsonl":
                write_jsonl(path, rows)
            else:
                pq.write_table(pa.Table.from_pylist(rows), path)
            fast = reader.read(path, ReadOptions())
            assert fast.rows_vectorised == len(rows), path
            slow = reader.read_rows(path, ReadOptions())
            assert fast.table.to_pylist() == slow.table.to_pylist()
            for r in fast.table.to_pylist():
                assert r["prompt_id"] == prompt_id(r["prompt"])


def test_blank_lines_do_not_shift_ids(tmp_path: Path) -> None:
    r = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps(r) + "\n\n" + json.dumps(r) + "\n", encoding="utf-8")
    fast, slow = _both(path)
    assert fast == slow
    assert [x["id"] for x in fast] == ["hh-rlhf:blank:1", "hh-rlhf:blank:2"]


def test_fast_equals_slow_on_random_transcripts(tmp_path: Path) -> None:
    """Transcripts built from the pieces the vectorised path must get right: markers cut in
    half or glued to newlines, markers across two rows, whitespace Python and Arrow treat
    differently, quotes and backslashes, non-ASCII, prompts that differ, empty answers; one
    file with control characters (rows checked one by one), one without (whole buffers)."""
    import random

    rng = random.Random(3)
    bits = [
        "\n\nHuman:", "\n\nAssistant:", "\n\n", "\n", " ", "  ", "\t", "\r\n", "\x0b", "x",
        "Hi", "CAPS", "é", "ＦＵＬＬ", "\u3000", "\xa0", '"', "\\", "Hum", "an:", "man:",
        "istant:", "Assistant", "Human:", "\n\nHuman", "\n\n\nHuman:", "\u2028", "\x0c",
    ]  # fmt: skip
    rare = ["\x85", "\x1f", "\x1c", "\x00", "\x08", "\x7f"]

    def text(k: int, controls: bool) -> str:
        out = [rng.choice(bits) for _ in range(rng.randint(0, k))]
        if controls and rng.random() < 0.05:
            out.append(rng.choice(rare))
        return "".join(out)

    for controls in (False, True):
        rows = []
        for i in range(2000):
            turns = "".join(
                f"\n\n{'Human' if t % 2 == 0 else 'Assistant'}: {text(2, controls)}"
                for t in range(rng.randint(1, 4))
            )
            prefix = text(2, controls) + turns if rng.random() < 0.1 else turns
            other = prefix if rng.random() < 0.85 else prefix + text(2, controls)
            end_c = "\n\nAssistant:" + text(3, controls)
            end_r = "\n\nAssistant:" + text(3, controls)
            if rng.random() < 0.05:
                end_r = end_c
            if rng.random() < 0.05:
                # a marker across two rows when the next row starts with "an:" / "man:"
                end_c += "Hum" if i % 2 else "\n\nHu"
            rows.append({"chosen": prefix + end_c, "rejected": other + end_r})
        fast, slow = _both(write_jsonl(tmp_path / f"random{controls}.jsonl", rows))
        assert fast == slow
        assert len(fast) > 1000


def test_marker_at_the_very_end_of_a_block(tmp_path: Path) -> None:
    ok = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    end = {
        "chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman:",
        "rejected": "\n\nHuman: a\n\nAssistant: c\n\nHuman:",
    }
    fast, slow = _both(write_jsonl(tmp_path / "end.jsonl", [ok, end]))
    assert fast == slow


def test_trl_rows_needing_the_per_row_rules_go_per_row(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prefkit.io.readers.trl import TRLPreferenceReader

    def u(t: str) -> dict[str, str]:
        return {"role": "user", "content": t}

    def a(t: str) -> dict[str, str]:
        return {"role": "assistant", "content": t}

    rows = [
        {"prompt": [u("q1")], "chosen": [a("x")], "rejected": [a("y")]},
        {"prompt": [u("q2")], "chosen": [u("q2"), a("x")], "rejected": [u("q2"), a("y")]},
        {"prompt": [u("q3")], "chosen": [], "rejected": [a("y")]},
        {
            "prompt": [u("q4")],
            "chosen": [a("s"), u("more"), a("x")],
            "rejected": [a("s"), u("more"), a("y")],
        },
        {"prompt": [u("q5")], "chosen": [a("x")], "rejected": [a("y")]},
    ]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    reader = TRLPreferenceReader()
    fast = reader.read(path, ReadOptions())
    slow = reader.read_rows(path, ReadOptions())
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.rows_vectorised == 2  # rows 1 and 5; the others follow TRL's extraction
    got = fast.table.to_pylist()
    assert got[1]["prompt"] == [u("q2")] and got[1]["response_a"] == [a("x")]
    assert got[3]["prompt"] == [u("q4"), a("s"), u("more")]
