"""The settings a score depends on besides the image and the model, and their fingerprint.

A cached score is only valid under the settings it was computed with: the same image and
checkpoint give another safety error under other importance groups. Every cache keys its
rows by :attr:`ScoringSettings.fingerprint`, so a setting added here as a field changes
the fingerprint and retires every score computed without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from models.inference import Resolution
from models.instances import DEFAULT_MIN_RECALL
from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.metrics import check_severity, default_severity_matrix
from models.taxonomy import DEFAULT_BAND

FINGERPRINT_CHARS = 32
"""Hex digits kept of the SHA-256: 128 bits, no collision between settings in practice."""


@dataclass(frozen=True, eq=False)
class ScoringSettings:
    """Everything that changes a per-image score: importance groups, severity matrix
    (default: derived from the groups), minimum instance recall, scoring resolution and the
    width of the error taxonomy's boundary band (a share of the image diagonal)."""

    groups: ImportanceGroups = DEFAULT_GROUPS
    severity: np.ndarray | None = None
    min_recall: float = DEFAULT_MIN_RECALL
    resolution: Resolution = "label"
    taxonomy_band: float = DEFAULT_BAND
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        severity = (
            default_severity_matrix(self.groups)
            if self.severity is None
            else check_severity(self.severity)
        )
        severity = np.array(severity, dtype=np.float64)
        severity.setflags(write=False)
        object.__setattr__(self, "severity", severity)
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:FINGERPRINT_CHARS]
        object.__setattr__(self, "fingerprint", digest)

    def to_dict(self) -> dict:
        """Plain form: what the fingerprint hashes, and what a report can show."""
        return {
            "groups": self.groups.to_dict(),
            "severity": self.severity.tolist(),
            "min_recall": float(self.min_recall),
            "resolution": self.resolution,
            "taxonomy_band": float(self.taxonomy_band),
        }
