"""``python -m dynmask``: the same as the ``dynmask`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
