"""`python -m api.cli`: the `hab` command (how `hab run` starts its programs with this interpreter)."""

from api.cli import main

main()
