"""`python -m prefkit.serve ARGS` = `prefkit serve ARGS` (used to run the server as a process)."""

from __future__ import annotations

import sys

from prefkit.cli import main

sys.argv = ["prefkit", "serve", *sys.argv[1:]]
main()
