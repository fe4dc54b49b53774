"""``python -m vsaopt.cli``: the same as the ``vsaopt`` command."""

from . import main

main()
