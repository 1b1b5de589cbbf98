"""``python -m vida.cli``: the same as ``vida-batch``."""

from vida.cli import main

main(prog_name="vida-batch")
