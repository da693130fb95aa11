"""Start the SegNet review bench: ``python launch.py --help`` explains every option."""

import os

# PyTorch's CPU threads spin while waiting for work; on a shared or busy machine that
# multiplies the GUI's latency many times. Passive waiting must be chosen before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from reviewer.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
