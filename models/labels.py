"""The one label space of the project: Cityscapes' 19 evaluated classes plus background.

Every class name, colour, id mapping and importance group used anywhere in the project
comes from here. The class table is derived from ``cityscapesscripts.helpers.labels``
(never retyped); the importance groups default to the SegNet-IAL recipe's and can be
replaced by a small TOML file.

Where ``train`` (trainId 16) belongs: the recipe's table lists it under "most important",
its loss code gives its class weight to group 3 ("important") only, and its nested masks
count it as most important. We make one explicit choice: **train is in group 3
(important)**, as the recipe's loss weights have it. A TOML file can move it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as _CITYSCAPES_LABELS

NUM_CLASSES = 20
"""19 evaluated Cityscapes classes (trainIds 0..18) and background (19)."""
BACKGROUND = 19
"""trainId of everything Cityscapes does not evaluate (void, parking, guard rail, ...)."""
NUM_EVALUATED = 19
MAX_LABEL_ID = max(label.id for label in _CITYSCAPES_LABELS)
"""Largest Cityscapes label id (33, bicycle); a labelIds PNG holding more is invalid."""


@dataclass(frozen=True)
class ClassInfo:
    """One class of the training label space."""

    train_id: int
    name: str
    color: tuple[int, int, int]
    label_id: int
    """Cityscapes label id written for this class in labelIds PNGs (0, unlabeled, for
    background)."""
    has_instances: bool


def _build_classes() -> tuple[ClassInfo, ...]:
    evaluated = sorted(
        (label for label in _CITYSCAPES_LABELS if 0 <= label.trainId < NUM_EVALUATED),
        key=lambda label: label.trainId,
    )
    unlabeled = next(label for label in _CITYSCAPES_LABELS if label.id == 0)
    classes = [
        ClassInfo(label.trainId, label.name, tuple(label.color), label.id, label.hasInstances)
        for label in evaluated
    ]
    classes.append(ClassInfo(BACKGROUND, "background", tuple(unlabeled.color), 0, False))
    assert [c.train_id for c in classes] == list(range(NUM_CLASSES))
    return tuple(classes)


CLASSES: tuple[ClassInfo, ...] = _build_classes()
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
PALETTE: np.ndarray = np.array([c.color for c in CLASSES], dtype=np.uint8)
"""RGB colour of each trainId, shape (20, 3)."""
INSTANCE_CLASSES: tuple[int, ...] = tuple(c.train_id for c in CLASSES if c.has_instances)
"""trainIds whose objects are counted one by one: person, rider, car ... bicycle."""

LABEL_ID_TO_TRAIN_ID: np.ndarray = np.full(256, BACKGROUND, dtype=np.uint8)
"""Lookup table: Cityscapes label id (0..255) -> trainId; unevaluated ids -> background."""
for _label in _CITYSCAPES_LABELS:
    if _label.id >= 0 and 0 <= _label.trainId < NUM_EVALUATED:
        LABEL_ID_TO_TRAIN_ID[_label.id] = _label.trainId
TRAIN_ID_TO_LABEL_ID: np.ndarray = np.array([c.label_id for c in CLASSES], dtype=np.uint8)
"""Lookup table: trainId -> the Cityscapes label id written in labelIds PNGs."""
LABEL_ID_BY_NAME: dict[str, int] = {
    label.name: label.id for label in _CITYSCAPES_LABELS if label.id >= 0
}
"""Every Cityscapes label name (including void ones such as 'ground') -> label id."""
LABEL_COLOR_BY_ID: np.ndarray = np.zeros((256, 3), dtype=np.uint8)
"""Official colour of every Cityscapes label id, for ``_gtFine_color.png`` files."""
for _label in _CITYSCAPES_LABELS:
    if _label.id >= 0:
        LABEL_COLOR_BY_ID[_label.id] = _label.color


def train_id_of(name: str) -> int:
    """trainId of a class given its name (as in ``CLASS_NAMES``)."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown class {name!r}; known: {', '.join(CLASS_NAMES)}") from None


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds array to trainIds 0..19 (uint8)."""
    return LABEL_ID_TO_TRAIN_ID[label_ids.astype(np.uint8, copy=False)]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map trainIds 0..19 to Cityscapes label ids, as written in labelIds PNGs."""
    return TRAIN_ID_TO_LABEL_ID[train_ids]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """RGB image (H, W, 3) uint8 of a trainId map in the official palette."""
    return PALETTE[train_ids]


class GroupsError(ValueError):
    """An importance-group definition that is not a partition of the label space."""


@dataclass(frozen=True)
class ImportanceGroups:
    """A partition of the 20 trainIds into groups ordered from least to most important.

    Group index 0 is the least important; ``most_important`` is the last one. A
    prediction whose group index is lower than the ground truth's is a *miss* of an
    important class; a higher one is a *false alarm*.
    """

    names: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise GroupsError("at least one importance group is needed")
        if len(self.names) != len(self.members):
            raise GroupsError("each group needs a name and a list of classes")
        if len(set(self.names)) != len(self.names):
            duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
            raise GroupsError(f"group names must be unique; repeated: {', '.join(duplicates)}")
        seen: dict[int, str] = {}
        for name, members in zip(self.names, self.members, strict=True):
            for train_id in members:
                if not 0 <= train_id < NUM_CLASSES:
                    raise GroupsError(f"group {name!r}: trainId {train_id} is not in 0..19")
                if train_id in seen:
                    raise GroupsError(
                        f"class {CLASS_NAMES[train_id]!r} ({train_id}) is in both group "
                        f"{seen[train_id]!r} and group {name!r}"
                    )
                seen[train_id] = name
        missing = [CLASS_NAMES[i] for i in range(NUM_CLASSES) if i not in seen]
        if missing:
            raise GroupsError(f"classes in no group: {', '.join(missing)}")

    @property
    def num_groups(self) -> int:
        return len(self.names)

    @property
    def most_important(self) -> int:
        return self.num_groups - 1

    @property
    def group_of(self) -> np.ndarray:
        """Array (20,) int64: the group index of every trainId."""
        lookup = np.zeros(NUM_CLASSES, dtype=np.int64)
        for index, members in enumerate(self.members):
            lookup[list(members)] = index
        return lookup

    def group_name_of(self, train_id: int) -> str:
        return self.names[int(self.group_of[train_id])]

    def to_dict(self) -> dict[str, list]:
        """Plain form stored in checkpoints and reports: names and trainIds per group."""
        return {"names": list(self.names), "members": [list(m) for m in self.members]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence]) -> ImportanceGroups:
        return cls(
            names=tuple(str(n) for n in data["names"]),
            members=tuple(tuple(int(i) for i in m) for m in data["members"]),
        )

    def to_toml(self) -> str:
        """The TOML form that :meth:`from_toml` reads back."""
        lines = ["# Importance groups, least important first."]
        for name, members in zip(self.names, self.members, strict=True):
            classes = ", ".join(f'"{CLASS_NAMES[i]}"' for i in members)
            lines += ["", "[[group]]", f'name = "{name}"', f"classes = [{classes}]"]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> ImportanceGroups:
        """Read groups from TOML: ``[[group]]`` tables with ``name`` and ``classes``.

        Groups are listed least important first; classes are names or trainIds.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise GroupsError(f"{source}: not valid TOML: {error}") from None
        tables = data.get("group")
        if not isinstance(tables, list) or not tables:
            raise GroupsError(f"{source}: needs at least one [[group]] table")
        names: list[str] = []
        members: list[tuple[int, ...]] = []
        for position, table in enumerate(tables, start=1):
            name = table.get("name")
            classes = table.get("classes")
            if not isinstance(name, str) or not name.strip():
                raise GroupsError(f"{source}: group {position} needs a non-empty 'name'")
            if not isinstance(classes, list):
                raise GroupsError(f"{source}: group {name!r} needs a 'classes' list")
            try:
                ids = tuple(c if isinstance(c, int) else train_id_of(str(c)) for c in classes)
            except ValueError as error:
                raise GroupsError(f"{source}: group {name!r}: {error}") from None
            names.append(name)
            members.append(ids)
        try:
            return cls(tuple(names), tuple(members))
        except GroupsError as error:
            raise GroupsError(f"{source}: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> ImportanceGroups:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise GroupsError(f"cannot read groups file {path}: {error.strerror}") from None
        return cls.from_toml(text, source=str(path))


DEFAULT_GROUPS = ImportanceGroups(
    names=("unimportant", "moderately important", "important", "most important"),
    members=(
        (train_id_of("sky"), BACKGROUND),
        tuple(map(train_id_of, ("building", "wall", "fence", "vegetation", "terrain"))),
        tuple(map(train_id_of, ("road", "sidewalk", "train"))),
        tuple(
            map(
                train_id_of,
                (
                    "pole",
                    "traffic light",
                    "traffic sign",
                    "person",
                    "rider",
                    "car",
                    "truck",
                    "bus",
                    "motorcycle",
                    "bicycle",
                ),
            )
        ),
    ),
)
"""The recipe's four groups, with train in "important" (see the module docstring)."""
