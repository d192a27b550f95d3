"""The one record of a trained fold, as a run folder and the grid's registry both store it.

`--mode train` writes it as `fold_<k>.json` beside the fold's weights; a grid
unit writes the same record, with its unit and key, under `records/`. So a
figure in REPRODUCTION.md and a run's results are read by the same code,
and a record's fields are checked by name and type when read
(`schema.checked_fields`): a typo is named, never dropped.
"""
import dataclasses

import numpy as np

from timnet_keras.errors import RecordError
from timnet_keras.schema import checked_fields

RECORD_VERSION = 1
# Keys a writer adds for readers (derived from the fields) or that older records spell otherwise.
_DERIVED_KEYS = ("record_version", "key", "per_class_recall", "protocol", "held_out")
_ARRAYS = ("test_indices", "y_true", "probabilities")


@dataclasses.dataclass(frozen=True, eq=False)
class FoldRecord:
    """One trained fold: its test rows, their probabilities, its training history, and where it came from.

    `probabilities` are the model's raw (uncalibrated) ones; `calibration` is what was fitted on
    the fold's held-out rows (`calibration.fit_calibration`), None without them. `history` holds
    per-epoch training loss and accuracy and the test-fold curve (`plan.CURVE_KEYS`), recorded
    for the paper's test-selected protocol and never used to select. The provenance fields
    (`training` to `finished`) and `unit` (a grid unit) are empty for records of older runs.
    """

    fold: int
    test_indices: np.ndarray
    y_true: np.ndarray
    probabilities: np.ndarray
    history: dict = dataclasses.field(default_factory=dict)
    selected_epoch: int | None = None
    seconds: float | int = 0.0
    calibration: dict | None = None
    labels: tuple = ()
    held_out_speakers: tuple = ()  # leave one speaker out: the test part's speaker(s)
    training: dict = dataclasses.field(default_factory=dict)
    model: dict = dataclasses.field(default_factory=dict)
    backend: str = ""
    versions: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)
    finished: str = ""
    unit: object = None  # the grid's `registry.Unit` of this fold; None in a run folder

    @property
    def temperature(self):
        """The fold's fitted temperature; 1 (no scaling) for a fold trained without calibration rows."""
        return float(self.calibration["temperature"]) if self.calibration else 1.0

    @property
    def y_pred(self):
        return np.argmax(self.probabilities, axis=1)

    @property
    def per_class_recall(self):
        """Recall per label in percent (None for a label absent from the test samples)."""
        recalls = []
        for k in range(self.probabilities.shape[1] if np.ndim(self.probabilities) == 2 else 0):
            mask = np.asarray(self.y_true) == k
            recalls.append(round(100.0 * float(np.mean(self.y_pred[mask] == k)), 4) if mask.any() else None)
        return recalls

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self):
        """The JSON object both stores write: arrays as lists, probabilities and curves to 6 decimals."""
        data = {}
        if self.unit is not None:
            data.update(record_version=RECORD_VERSION, unit=self.unit.to_json(), key=self.unit.key)
        data.update(
            fold=int(self.fold),
            labels=list(self.labels),
            test_indices=np.asarray(self.test_indices).astype(int).tolist(),
            y_true=np.asarray(self.y_true).astype(int).tolist(),
            probabilities=np.asarray(self.probabilities, np.float64).round(6).tolist(),
            per_class_recall=self.per_class_recall,
            history={k: [round(float(v), 6) for v in values] for k, values in self.history.items()},
            selected_epoch=self.selected_epoch,
            seconds=self.seconds,
            calibration=self.calibration,
            training=self.training,
            model=self.model,
            backend=self.backend,
            versions=self.versions,
            machine=self.machine,
            finished=self.finished,
        )
        if self.held_out_speakers:
            data.update(protocol=getattr(self.unit, "protocol", "speaker"), held_out_speakers=list(self.held_out_speakers))
        return data

    @classmethod
    def from_json(cls, data, where="record", unit=None):
        """The record in `data`; RecordError naming `where` and the field for an unknown, missing or mistyped one.

        Example:
            >>> FoldRecord.from_json({"fold": 1, "test_indices": [4], "y_true": [0], "probabilities": [[0.9, 0.1]]}).y_pred
            array([0])
            >>> FoldRecord.from_json({"fold": 1, "test_indices": [4], "y_true": [0], "probabilities": [[0.9, 0.1]],
            ...                       "selected_epoc": 3}, "fold_1.json")
            Traceback (most recent call last):
            ...
            timnet_keras.errors.RecordError: fold_1.json: unknown field 'selected_epoc'; known: fold, test_indices, y_true, probabilities, history, selected_epoch, seconds, calibration, labels, held_out_speakers, training, model, backend, versions, machine, finished, unit
        """
        if isinstance(data, dict) and "fold" not in data and unit is not None:
            data = {**data, "fold": unit.fold}  # a registry record before version 2 names its fold by its unit only
        fields = checked_fields(cls, data, where, ignored=_DERIVED_KEYS, nested=_ARRAYS + ("unit",))
        fields["unit"] = unit
        n = len(fields["y_true"])
        try:
            fields["test_indices"] = np.asarray(fields["test_indices"], dtype=int)
            fields["y_true"] = np.asarray(fields["y_true"], dtype=int)
            fields["probabilities"] = np.asarray(fields["probabilities"], dtype=np.float64).reshape(n, -1)
        except (TypeError, ValueError) as error:
            raise RecordError(f"{where}: its arrays do not read as numbers of matching lengths ({error})") from None
        if len(fields["test_indices"]) not in (0, n):
            raise RecordError(f"{where}: {len(fields['test_indices'])} test indices for {n} labels")
        for key in ("labels", "held_out_speakers"):
            fields[key] = tuple(fields.get(key, ()))
        return cls(**fields)


def machine_description(node_id=""):
    """Where a fold was trained: every record carries it."""
    import os
    import platform
    import socket

    description = {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count(),
                   "pid": os.getpid()}
    if node_id:
        description["ray_node"] = node_id
    return description


def with_provenance(record, training, model_config, selection, protocol, node_id="", seconds=None, normalise="none"):
    """`record` with what makes it traceable: its training settings, model, backend, versions, machine and time.

    The train mode and the grid call this alike, so their records of one fold differ only in timing and place.
    """
    import keras

    from timnet_keras.io import time_stamp, versions

    return record.replace(
        training={**dataclasses.asdict(training), "selection": selection, "protocol": protocol,
                  **({"normalise": normalise} if normalise != "none" else {})},
        model=model_config.backbone_kwargs() | {"num_classes": model_config.num_classes},
        backend=keras.backend.backend(), versions=versions(), machine=machine_description(node_id),
        finished=time_stamp(), seconds=record.seconds if seconds is None else round(seconds, 1))
