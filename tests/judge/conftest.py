"""A real OpenAI-compatible server (tests/judge/fake_openai.py under uvicorn, in its own
process on loopback) and helpers to run the real CLI against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def requests(self) -> list[tuple[str, int]]:
        """(request hash, attempt) for every request the server received, in order."""
        return [(r[0], int(r[1])) for r in self.log_lines()]

    def log_lines(self) -> list[list[str]]:
        """[hash, attempt, temperature, max_tokens, logprobs asked] per request."""
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(log: Path, *args: str, port: int | None = None) -> Server:
    port = port or free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.judge.fake_openai", "--port", str(port),
         "--log", str(log), *args],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"fake server exited: {err}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return Server(url + "/v1", log, proc)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fake server did not start in 60 s")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("srv") / "calls.log")
    yield s
    s.stop()


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own (its request log starts empty)."""
    s = start_server(tmp_path / "calls.log")
    yield s
    s.stop()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point (`prefkit.cli.main`, as the `prefkit` script runs it) in this
    process, stdout and stderr captured: (returncode, stdout, stderr)."""
    import contextlib
    import io

    from prefkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, saved = sys.argv, dict(os.environ)
    sys.argv = ["prefkit", *args]
    os.environ.update(env or {})
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def cli_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a subprocess: (returncode, stdout, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    full_env.update(env or {})
    code = "from prefkit.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=600, env=full_env, cwd=REPO,
    )  # fmt: skip


def error_line(p: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line of a failed run (and no traceback anywhere)."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]
