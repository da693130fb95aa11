"""Argument types the command lines share, so that a value is written the same way to
every one of them."""

from __future__ import annotations

import argparse
import re

SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_size(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512), with a message argparse shows for anything else; each
    command line checks the range its own use allows."""
    match = SIZE.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 256x512, got {text!r}")
    return int(match.group(1)), int(match.group(2))
