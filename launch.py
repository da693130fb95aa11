"""Start the SegNet review bench: ``python launch.py --help`` explains every option."""

import os

# PyTorch's CPU threads spin while waiting for work; on a shared or busy machine that
# multiplies the GUI's latency many times. Passive waiting must be chosen before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Gradio switches matplotlib's backend around every event when matplotlib is installed
# (cityscapesscripts brings it); naming the backend up front spares the first click about
# 0.7 s of backend discovery.
os.environ.setdefault("MPLBACKEND", "agg")

from reviewer.launcher import main

if __name__ == "__main__":
    raise SystemExit(main())
