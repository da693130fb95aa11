"""Values the command lines offer, in a module that imports nothing heavy: a parser built
from them answers ``--help`` before torch, OpenCV or the database driver load."""

DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEMO_DATA = "demo"
"""The ``--data`` value that means the synthetic demo set, generated on first use."""
