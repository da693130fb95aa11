"""Start the SegNet review bench: ``python launch.py --help`` explains every option."""

from reviewer.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
