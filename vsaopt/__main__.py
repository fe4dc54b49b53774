"""``python -m vsaopt``: the same as the ``vsaopt`` command."""

from .cli import main

main()
