"""The model catalogue: which checkpoints the tools offer, under which names, and what kind of
data each was trained on, so that the pair shown first fits the images under review and a pair
that does not fit is said not to.

The shipped pairs are defined here once; the app, the export and the retraining command
(``python -m models.shipped``) read them from this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from models.checkpoints import CheckpointError, CheckpointMetadata, load_checkpoint
from models.datasets import DATA_KIND_NAMES, SYNTHETIC

SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
"""The folder of the checkpoints that come with the project."""


@dataclass(frozen=True)
class ShippedPair:
    """A CE/IAL pair that comes with the project, trained alike but for the loss."""

    name: str
    data_kind: str
    """The kind of data both were trained on (see :data:`models.datasets.DATA_KIND_NAMES`)."""
    stems: tuple[str, str]
    """File stems of the CE and the IAL checkpoint in :data:`SHIPPED_CHECKPOINTS`."""
    settings: Mapping[str, str]
    """``models.train`` options shared by both (only ``--loss`` differs)."""
    epochs: int

    def path(self, loss: str) -> Path:
        return SHIPPED_CHECKPOINTS / f"{self.stems[('ce', 'ial').index(loss)]}.pt"


SHIPPED_PAIRS = (
    ShippedPair(
        name="demo",
        data_kind=SYNTHETIC,
        stems=("segnet-ce", "segnet-ial"),
        settings={"width": "0.25", "size": "128x256", "batch": "8", "lr": "1e-3", "seed": "0"},
        epochs=56,
    ),
    ShippedPair(
        name="camvid",
        data_kind="camvid",
        stems=("camvid-ce", "camvid-ial"),
        settings={
            "width": "0.25",
            "size": "192x256",
            "batch": "8",
            "lr": "1e-3",
            "lr-schedule": "cosine",
            "select": "val_mean_iou",
            "seed": "0",
        },
        epochs=36,
    ),
)
UPLOAD_KIND = "camvid"
"""What an uploaded road photo is taken to be when models are matched to it: a real photo,
so the real-scene pair is used for it by default."""


@dataclass(frozen=True)
class CatalogueModel:
    """One checkpoint the tools offer, with what its card says about its training data."""

    name: str
    path: Path
    loss: str | None
    data_kind: str | None
    """None when the checkpoint does not say (a bare recipe state_dict, an older card)."""
    data_name: str
    shipped: bool

    @property
    def label(self) -> str:
        """How a model picker lists it: name, loss and training data."""
        return f"{self.name} ({(self.loss or 'loss unknown').upper()}, {self.data_name})"

    def mismatch(self, data_kind: str) -> str | None:
        """Why this model may not fit data of ``data_kind``; None when it was trained on it."""
        shown = DATA_KIND_NAMES.get(data_kind, data_kind)
        if self.data_kind is None:
            return f"{self.name}: its training data is unknown; the images are {shown}"
        if self.data_kind == data_kind:
            return None
        return f"{self.name} was trained on {self.data_name}; the images are {shown}"


def _card(name: str, path: Path, metadata: CheckpointMetadata, shipped: bool) -> CatalogueModel:
    data = metadata.training_data
    kind = data.get("kind")
    return CatalogueModel(
        name=name,
        path=path,
        loss=metadata.loss,
        data_kind=str(kind) if kind else None,
        data_name=str(data.get("name") or "training data unknown"),
        shipped=shipped,
    )


def _checkpoint_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix in (".pt", ".pth"))
        return [p for p in files if not p.name.endswith((".last.pt", ".resume.pt"))]
    if source.is_file():
        return [source]
    raise FileNotFoundError(f"model file or folder not found: {source}")


@dataclass
class ModelCatalogue:
    """Checkpoints by unique name, each with its card; those that cannot be read are listed in
    ``skipped`` with the reason, so one bad file does not keep the others from being offered."""

    models: dict[str, CatalogueModel] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @classmethod
    def discover(cls, sources: Iterable[Path], shipped: bool = True) -> ModelCatalogue:
        """The checkpoints (``*.pt``/``*.pth``) in the given files and folders, after the
        shipped ones unless ``shipped`` is False; a name taken twice gets ``-2``, ``-3``..."""
        catalogue = cls()
        if shipped and SHIPPED_CHECKPOINTS.is_dir():
            catalogue.add_files(_checkpoint_files(SHIPPED_CHECKPOINTS), shipped=True)
        for source in sources:
            catalogue.add_files(_checkpoint_files(Path(source).expanduser()), shipped=False)
        return catalogue

    @classmethod
    def of_files(cls, named: Mapping[str, Path]) -> ModelCatalogue:
        """A catalogue of exactly these files under exactly these names."""
        catalogue = cls()
        for name, path in named.items():
            catalogue.add(name, Path(path), shipped=False)
        return catalogue

    def add_files(self, paths: Iterable[Path], shipped: bool) -> None:
        for path in paths:
            path = path.resolve()
            if any(model.path == path for model in self.models.values()):
                continue
            name, n = path.stem, 2
            while name in self.models:
                name, n = f"{path.stem}-{n}", n + 1
            self.add(name, path, shipped)

    def add(self, name: str, path: Path, shipped: bool) -> None:
        try:
            metadata = load_checkpoint(path).metadata
        except CheckpointError as error:
            self.skipped.append((path, str(error)))
            return
        self.models[name] = _card(name, path, metadata, shipped)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self) -> Iterator[str]:
        return iter(self.models)

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def __getitem__(self, name: str) -> CatalogueModel:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(self.models) or "none"
            raise KeyError(f"unknown model {name!r}; known: {known}") from None

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def path(self, name: str) -> Path:
        return self[name].path

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) for every model, as a picker lists them."""
        return [(model.label, name) for name, model in self.models.items()]

    def pair_for(self, data_kind: str) -> tuple[str, str]:
        """Models A and B to show first on data of ``data_kind``: the shipped pair trained on
        that kind; else a CE and an IAL model trained on it; else a CE and an IAL model."""
        if not self.models:
            raise CheckpointError("no model checkpoint found; pass --models FILE_OR_DIR")
        for pair in SHIPPED_PAIRS:
            names = [self._shipped_name(pair.path(loss)) for loss in ("ce", "ial")]
            if pair.data_kind == data_kind and None not in names:
                return names[0], names[1]  # type: ignore[return-value]
        fitting = [m for m in self.models.values() if m.data_kind == data_kind]
        return _ce_and_ial(fitting) or _ce_and_ial(list(self.models.values())) or self._any_two()

    def _shipped_name(self, path: Path) -> str | None:
        return next(
            (m.name for m in self.models.values() if m.shipped and m.path == path.resolve()), None
        )

    def _any_two(self) -> tuple[str, str]:
        names = self.names
        return names[0], names[-1]


def _ce_and_ial(models: list[CatalogueModel]) -> tuple[str, str] | None:
    """A CE and an IAL model among these (by the loss on their cards, else by name)."""

    def loss_of(model: CatalogueModel) -> str:
        if model.loss:
            return model.loss
        parts = model.name.lower().replace("_", "-").split("-")
        return next((loss for loss in ("ce", "ial") if loss in parts), "")

    ce = next((m.name for m in models if loss_of(m) == "ce"), None)
    ial = next((m.name for m in models if loss_of(m) == "ial" and m.name != ce), None)
    return (ce, ial) if ce and ial else None
