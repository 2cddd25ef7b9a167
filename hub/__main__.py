"""``python -m hub`` runs the CLI (used to spawn workers with the same interpreter)."""

from .cli import main

main()
