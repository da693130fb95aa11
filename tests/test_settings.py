"""The settings fingerprint that keys every cached score: each setting changes it, nothing
else does."""

from __future__ import annotations

import dataclasses

import numpy as np

from models.labels import DEFAULT_GROUPS, ImportanceGroups
from models.metrics import default_severity_matrix
from models.settings import ScoringSettings

OTHER_GROUPS = ImportanceGroups(
    names=("everything else", "road"),
    members=(tuple(i for i in range(20) if i not in (0, 1)), (0, 1)),
)


def test_equal_settings_share_a_fingerprint_and_the_default_severity_is_explicit() -> None:
    default = ScoringSettings()
    assert ScoringSettings().fingerprint == default.fingerprint
    explicit = ScoringSettings(DEFAULT_GROUPS, default_severity_matrix(DEFAULT_GROUPS))
    assert explicit.fingerprint == default.fingerprint
    assert len(default.fingerprint) == 32


def test_every_setting_changes_the_fingerprint() -> None:
    severity = default_severity_matrix(DEFAULT_GROUPS)
    severity[11, 0] += 1.0  # a person taken for road costs more
    changed = {
        "groups": OTHER_GROUPS,
        "severity": severity,
        "min_recall": 0.25,
        "resolution": "input",
        "taxonomy_band": 0.02,
    }
    init_fields = {f.name for f in dataclasses.fields(ScoringSettings) if f.init}
    assert set(changed) == init_fields, "a new setting needs a case here"
    default = ScoringSettings().fingerprint
    prints = {name: ScoringSettings(**{name: value}).fingerprint for name, value in changed.items()}
    assert default not in prints.values()
    assert len(set(prints.values())) == len(prints)


def test_other_groups_derive_their_own_default_severity() -> None:
    settings = ScoringSettings(OTHER_GROUPS)
    assert np.array_equal(settings.severity, default_severity_matrix(OTHER_GROUPS))
    assert settings.fingerprint != ScoringSettings().fingerprint
