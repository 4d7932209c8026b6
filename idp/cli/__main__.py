"""`python -m idp.cli`: the `idp` command."""

from idp.cli import main

# Guarded: `idp audit verify` starts worker processes, which import this module again.
if __name__ == "__main__":
    main()
