"""Where the audit's memory goes: `run_audit` on one canonical Parquet file, in process, with
a sampler thread that records the resident memory every 50 ms and, at each new high (150 MiB
above the last one logged), the prefkit frames of every other thread; plus the sizes of the
frame's arrays once it is built and the RSS and Arrow pool at each step's end.

    PYTHONPATH=src python benchmarks/profile_audit.py DATA.parquet OUT_DIR

Writes the audit's outputs to OUT_DIR and the log to OUT_DIR.prof.log (docs/scale.md,
RESULTS.md "Scale (issue 21)").
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any


def _stacks() -> list[str]:
    """The prefkit frames of every other thread. No frame object outlives this call: a frame
    held by the sampler would keep its function's locals (and their memory) alive."""
    stacks = []
    frames = sys._current_frames()
    try:
        for tid, fr in frames.items():
            if tid == threading.get_ident():
                continue
            st = [
                f"{Path(x.filename).name}:{x.lineno}:{x.name}"
                for x in traceback.extract_stack(fr)
                if "prefkit" in x.filename
            ]
            if st:
                stacks.append(" > ".join(st[-5:]))
    finally:
        del frames
    return stacks


def main() -> None:
    import numpy as np
    import psutil
    import pyarrow as pa

    from prefkit.audit import frame as frame_mod
    from prefkit.audit.run import run_audit

    src, out = sys.argv[1], sys.argv[2]
    proc = psutil.Process()
    t0 = time.time()
    peak = [0]
    log = open(out + ".prof.log", "w")  # noqa: SIM115

    def pr(*a: object) -> None:
        rss = proc.memory_info().rss / 2**30
        print(f"[{time.time() - t0:7.1f}s rss={rss:.2f}G]", *a, file=log, flush=True)

    stop = threading.Event()

    def sampler() -> None:
        logged = 0
        while not stop.is_set():
            r = proc.memory_info().rss
            if r > peak[0]:
                peak[0] = r
                if r > logged + 150 * 2**20:
                    logged = r
                    stacks = _stacks()
                    pr(f"NEW HIGH {r / 2**30:.2f}G", " || ".join(stacks))
            time.sleep(0.05)

    threading.Thread(target=sampler, daemon=True).start()
    built = frame_mod.Frame.of.__func__  # type: ignore[attr-defined]

    def of(cls: Any, *a: Any, **k: Any) -> Any:
        f = built(cls, *a, **k)
        sizes: dict[str, float] = {}
        for name, v in vars(f).items():
            if isinstance(v, np.ndarray | pa.Array | pa.ChunkedArray | pa.Table):
                sizes[name] = v.nbytes / 2**20
            elif isinstance(v, dict):
                sizes[name] = sum(getattr(x, "nbytes", 0) for x in v.values()) / 2**20
        big = dict(sorted(sizes.items(), key=lambda x: -x[1]))
        pr("FRAME built (MiB)", json.dumps({k: round(v, 1) for k, v in big.items()}))
        return f

    frame_mod.Frame.of = classmethod(of)  # type: ignore[method-assign, assignment]

    def progress(step: str, done: int, total: int) -> None:
        pr(f"STEP {step} {done}/{total} arrow_pool={pa.total_allocated_bytes() / 2**30:.2f}G")

    run_audit([Path(src)], out, progress=progress, source_name=Path(src).name)
    pr("DONE", f"peak={peak[0] / 2**30:.2f}G")
    stop.set()


if __name__ == "__main__":
    main()
