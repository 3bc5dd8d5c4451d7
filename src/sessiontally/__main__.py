"""``python -m sessiontally`` runs the command line."""

from .cli import main

main()
