"""``python -m models.synthetic``: the command line in :mod:`models.synthetic.cli`."""

from models.synthetic.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
