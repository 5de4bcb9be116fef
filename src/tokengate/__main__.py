"""`python -m tokengate` runs the CLI."""

from tokengate.cli import main

main()
