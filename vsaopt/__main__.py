"""``python -m vsaopt``: the same as the ``vsaopt`` command."""

from .cli import main

if __name__ == "__main__":  # importing the module (as the doctest runner does) runs nothing
    main()
