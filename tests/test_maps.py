"""The code tables of the error and disagreement maps: the metric functions write the
values the tables name, and the palettes, overlays and legends come from the same tables."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from models.labels import BACKGROUND, CLASS_NAMES, PALETTE, train_id_of
from models.maps import (
    CODE_MAPS,
    CODES,
    DISAGREEMENT_MAP,
    ERROR_MAP,
    CodeMap,
    MapCode,
    split_by_map,
)
from models.metrics import disagreement_map, error_map
from reviewer.overlays import CODE_OPACITY, code_overlay
from reviewer.panels import code_legends

ROAD, SIDEWALK, SKY, PERSON, CAR = (
    train_id_of(n) for n in ("road", "sidewalk", "sky", "person", "car")
)


def test_error_map_writes_the_values_its_table_names() -> None:
    gt = np.array([[ROAD, ROAD, PERSON, SKY, BACKGROUND]], np.uint8)
    pred = np.array([[ROAD, SIDEWALK, ROAD, CAR, ROAD]], np.uint8)
    keys = ["correct", "other_error", "miss", "false_alarm", "ignored"]
    np.testing.assert_array_equal(error_map(gt, pred), [[ERROR_MAP.value(k) for k in keys]])


def test_disagreement_map_writes_the_values_its_table_names() -> None:
    gt = np.array([[PERSON, PERSON, PERSON, PERSON, ROAD, BACKGROUND]], np.uint8)
    pred_a = np.array([[PERSON, PERSON, CAR, CAR, CAR, CAR]], np.uint8)
    pred_b = np.array([[PERSON, CAR, PERSON, CAR, ROAD, ROAD]], np.uint8)
    keys = ["both_right", "only_a", "only_b", "both_wrong", "ignored", "ignored"]
    expected = [[DISAGREEMENT_MAP.value(k) for k in keys]]
    np.testing.assert_array_equal(disagreement_map(gt, pred_a, pred_b), expected)


@pytest.mark.parametrize("code_map", CODE_MAPS.values(), ids=lambda m: m.title)
def test_overlays_draw_the_marked_codes_in_their_colours_only(code_map: CodeMap) -> None:
    codes = np.array([[code.value for code in code_map.codes]], np.uint8)
    image = np.full((*codes.shape, 3), 200, np.uint8)
    dimmed = 80
    drawn = code_overlay(image, codes, code_map)
    for column, code in enumerate(code_map.codes):
        pixel = drawn[0, column].astype(int)
        if code.color is None:
            assert tuple(pixel) == (dimmed,) * 3, f"{code.key} shows the dimmed image"
        else:
            mixed = np.array(code.color) * CODE_OPACITY + dimmed * (1 - CODE_OPACITY)
            assert np.abs(pixel - mixed).max() <= 1, code.key


def test_legends_show_each_map_from_its_table() -> None:
    legends = code_legends()
    for code_map in CODE_MAPS.values():
        assert code_map.title in legends
        for code in code_map.marked:
            assert f'rgb{code.color};"></span>{code.legend}</span>' in legends
    assert "unmarked: correct; not judged: ground-truth background" in legends
    assert legends.count('class="legend-chip"') == sum(len(m.marked) for m in CODE_MAPS.values())


def test_the_table_refuses_codes_a_map_cannot_show() -> None:
    with pytest.raises(ValueError, match="unique"):
        CodeMap("twice", (MapCode("m", "a", 1, "a"), MapCode("m", "b", 1, "b")))
    with pytest.raises(ValueError, match="uint8"):
        CodeMap("large", (MapCode("m", "a", 256, "a"),))
    with pytest.raises(ValueError, match=r"no title: \['typo'\]"):
        split_by_map((MapCode("typo", "a", 1, "a"),), {"m": "M"})
    with pytest.raises(KeyError, match="no code 'nope'"):
        ERROR_MAP.value("nope")


def test_no_map_colour_is_the_red_of_person_and_rider() -> None:
    """Red means person and rider in the class palette; a map code in a near hue would
    read as one of them."""
    for name in ("person", "rider"):
        person_hue = colorsys.rgb_to_hsv(*(c / 255 for c in PALETTE[CLASS_NAMES.index(name)]))[0]
        for code in CODES:
            if code.color is None:
                continue
            hue, saturation, _ = colorsys.rgb_to_hsv(*(c / 255 for c in code.color))
            apart = abs(hue - person_hue) * 360
            assert saturation < 0.35 or min(apart, 360 - apart) > 25, (code.key, name)
