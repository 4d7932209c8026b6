"""`python -m idp.cli`: the `idp` command."""

from idp.cli import main

main()
