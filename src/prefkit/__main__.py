"""`python -m prefkit`: the command line."""

from prefkit.cli import main

main()
