"""CSV cells that a spreadsheet shows as text, never runs as a formula.

A cell written by a person or taken from a file name (a reviewer, a note, an image id) that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (``=HYPERLINK(...)`` sends data away when clicked). As OWASP
recommends for CSV injection, such text gets a leading ``'``, which spreadsheets show as a
text marker; numbers are written as they are. JSON exports keep the raw text.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` as a CSV cell: text that a spreadsheet would run gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value
