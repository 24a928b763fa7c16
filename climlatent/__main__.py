"""``python -m climlatent``: the command line."""

from climlatent.cli import main

main()
