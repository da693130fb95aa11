"""The label space agrees with the official Cityscapes table, and group files are validated."""

from __future__ import annotations

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label, labels, trainId2label

from models.labels import (
    BACKGROUND,
    CLASS_NAMES,
    DEFAULT_GROUPS,
    LABEL_ID_TO_TRAIN_ID,
    PALETTE,
    TRAIN_ID_TO_LABEL_ID,
    GroupsError,
    ImportanceGroups,
    colorize,
    label_ids_to_train_ids,
)


def test_classes_follow_the_official_table() -> None:
    for train_id in range(19):
        official = trainId2label[train_id]
        assert CLASS_NAMES[train_id] == official.name
        assert tuple(PALETTE[train_id]) == official.color
        assert id2label[int(TRAIN_ID_TO_LABEL_ID[train_id])].trainId == train_id
    assert CLASS_NAMES[BACKGROUND] == "background"


def test_every_label_id_maps_to_its_train_id_or_background() -> None:
    for label in labels:
        if label.id < 0:
            continue
        expected = label.trainId if 0 <= label.trainId < 19 else BACKGROUND
        assert LABEL_ID_TO_TRAIN_ID[label.id] == expected, label.name
    ids = np.array([[7, 24], [0, 33]], dtype=np.uint8)
    assert label_ids_to_train_ids(ids).tolist() == [[0, 11], [19, 18]]
    assert colorize(np.array([[0]], dtype=np.uint8)).tolist() == [[[128, 64, 128]]]


def test_default_groups_are_the_recipes_with_train_as_important() -> None:
    group_of = DEFAULT_GROUPS.group_of
    by_name = {name: group_of[i] for i, name in enumerate(CLASS_NAMES)}
    assert by_name["sky"] == by_name["background"] == 0
    assert {by_name[n] for n in ("building", "wall", "fence", "vegetation", "terrain")} == {1}
    assert {by_name[n] for n in ("road", "sidewalk", "train")} == {2}
    most = ("pole", "traffic light", "traffic sign", "person", "rider", "car")
    assert {by_name[n] for n in most} == {3}
    assert DEFAULT_GROUPS.most_important == 3


def test_groups_round_trip_through_toml(tmp_path) -> None:
    path = tmp_path / "groups.toml"
    path.write_text(DEFAULT_GROUPS.to_toml())
    assert ImportanceGroups.load(path) == DEFAULT_GROUPS


def test_custom_groups_accept_names_and_train_ids() -> None:
    text = """
[[group]]
name = "rest"
classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 18, "background"]
[[group]]
name = "vulnerable road users"
classes = ["person", "rider"]
"""
    groups = ImportanceGroups.from_toml(text)
    assert groups.names == ("rest", "vulnerable road users")
    assert groups.group_of[11] == groups.group_of[12] == 1
    assert groups.group_of[19] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one [[group]]"),
        ("[[group]]\nname='a'\nclasses=[0]\n", "classes in no group: sidewalk"),
        (
            "[[group]]\nname='a'\nclasses=[0]\n[[group]]\nname='a'\nclasses=[1]\n",
            "repeated: a",
        ),
        (
            "[[group]]\nname='a'\nclasses=['road']\n[[group]]\nname='b'\nclasses=['road']\n",
            "'road' (0) is in both group 'a' and group 'b'",
        ),
        ("[[group]]\nname='a'\nclasses=['lamp post']\n", "unknown class 'lamp post'"),
        ("[[group]]\nname='a'\nclasses=[25]\n", "trainId 25 is not in 0..19"),
        ("[[group]\n", "not valid TOML"),
        ("[[group]]\nclasses=[1]\n", "needs a non-empty 'name'"),
    ],
)
def test_invalid_groups_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(GroupsError, match=None) as caught:
        ImportanceGroups.from_toml(text, source="mine.toml")
    assert message in str(caught.value)
    assert "mine.toml" in str(caught.value)


def test_missing_groups_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(GroupsError, match="cannot read groups file"):
        ImportanceGroups.load(tmp_path / "nope.toml")
