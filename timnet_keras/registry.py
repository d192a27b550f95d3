"""The results registry: one small JSON record per finished unit of the reproduction grid, tracked in git.

A unit is one fold of one cross-validated cell (`cv`), or one training on
all of a source corpus tested on all of a target (`cross`). Its record holds
what a table needs and what makes it traceable (test indices, predictions,
per-class recalls, the training history, seeds, versions, machine, backend,
wall time), never weights. The grid resumes from these files: a unit whose
record exists is finished, whatever machine wrote it. Records are written
atomically by the grid's driver alone.

Layout: `<registry>/records/cv/<corpus>/<variant>/seed<S>-e<epochs>/fold<K>.json`
and `<registry>/records/cross/<source>-<target>/<variant>/seed<S>-e<epochs>.json`.
A cell in bfloat16 adds `-bfloat16` to its run, a cell under leave-one-speaker-out
adds `-speaker` (`cv/EMODB/timnet/seed46-e500-speaker/fold03`: the third speaker in
sorted order held out), and one trained on normalised features (`--normalise`, see
`timnet_keras.normalise`) adds `-norm-<option>` last (`cv/EMODB/timnet/seed46-e500-speaker-norm-utterance/fold03`);
the paper's 10-fold float32 cells on raw MFCCs keep the plain names, so
the records written before any of these existed keep theirs. The baselines (`baselines.py`)
are cv cells of their own variants with 0 epochs (`cv/EMODB/mfcc_stats/seed46-e0/...`).
"""
import contextlib
import dataclasses
import glob
import os
import socket
from dataclasses import dataclass, field

import numpy as np

from .errors import TimnetError
from .io import read_json, write_json_atomic
from .schema import checked_fields

RECORDS = "records"
LOCK = ".grid.lock"
RECORD_VERSION = 1


class RegistryError(TimnetError):
    """A registry record that cannot be used; the message says what to do."""


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of work of the grid. `fold` is 1..n_folds for `cv`, 0 for `cross`."""

    kind: str  # "cv" or "cross"
    corpus: str  # the source corpus of a cross unit
    variant: str
    seed: int
    epochs: int
    fold: int = 0
    n_folds: int = 0
    target: str = ""  # cross only
    precision: str = "float32"  # or "bfloat16" (mixed precision); records before it existed are float32
    protocol: str = "kfold"  # cv: "kfold" (the paper's) or "speaker" (leave one speaker out); older records are kfold
    normalise: str = "none"  # cv: the features' normalisation (`normalise.py`); older records are none (raw MFCCs)

    @property
    def cell(self):
        """The cell this unit belongs to: the unit without its fold.

        Example:
            >>> Unit("cv", "EMODB", "timnet", 46, 500, fold=3, n_folds=10).cell
            'cv/EMODB/timnet/seed46-e500'
            >>> Unit("cv", "EMODB", "timnet", 46, 500, fold=3, n_folds=10, precision="bfloat16").cell
            'cv/EMODB/timnet/seed46-e500-bfloat16'
            >>> Unit("cv", "EMODB", "timnet", 46, 500, fold=3, n_folds=10, protocol="speaker").cell
            'cv/EMODB/timnet/seed46-e500-speaker'
            >>> Unit("cv", "EMODB", "timnet", 46, 500, fold=3, n_folds=10, protocol="speaker", normalise="utterance").cell
            'cv/EMODB/timnet/seed46-e500-speaker-norm-utterance'
        """
        run = f"seed{self.seed}-e{self.epochs}" + ("" if self.precision == "float32" else f"-{self.precision}")
        run += "" if self.protocol == "kfold" else f"-{self.protocol}"
        run += "" if self.normalise == "none" else f"-norm-{self.normalise}"
        if self.kind == "cross":
            return f"cross/{self.corpus}-{self.target}/{self.variant}/{run}"
        return f"cv/{self.corpus}/{self.variant}/{run}"

    @property
    def key(self):
        """The unit's name, and its record's path under `records/` without `.json`.

        Example:
            >>> Unit("cv", "EMODB", "timnet", 46, 500, fold=3, n_folds=10).key
            'cv/EMODB/timnet/seed46-e500/fold03'
        """
        return self.cell if self.kind == "cross" else f"{self.cell}/fold{self.fold:02d}"

    def to_json(self):
        """The unit's fields; `normalise` only when not none, so a raw-MFCC unit's record reads as it always has."""
        data = dataclasses.asdict(self)
        if self.normalise == "none":
            del data["normalise"]
        return data

    @classmethod
    def from_json(cls, data, where="unit"):
        return cls(**checked_fields(cls, data, where))


@dataclass
class UnitRecord:
    """What one finished unit leaves in the registry."""

    unit: Unit
    labels: tuple
    test_indices: np.ndarray
    y_true: np.ndarray
    probabilities: np.ndarray
    history: dict = field(default_factory=dict)
    selected_epoch: int | None = None
    training: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    seconds: float = 0.0
    backend: str = ""
    versions: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    finished: str = ""
    held_out: tuple = ()  # speaker protocol: the speaker(s) of the test part; empty for kfold and cross units

    @property
    def y_pred(self):
        return np.argmax(self.probabilities, axis=1)

    @property
    def per_class_recall(self):
        """Recall per label in percent (None for a label absent from the test samples)."""
        recalls = []
        for k in range(len(self.labels)):
            mask = self.y_true == k
            recalls.append(round(100.0 * float(np.mean(self.y_pred[mask] == k)), 4) if mask.any() else None)
        return recalls

    def to_json(self):
        history = {k: [round(float(v), 6) for v in values] for k, values in self.history.items() if k != "seconds"}
        return {
            "record_version": RECORD_VERSION,
            "unit": self.unit.to_json(),
            "key": self.unit.key,
            "labels": list(self.labels),
            "test_indices": np.asarray(self.test_indices).astype(int).tolist(),
            "y_true": np.asarray(self.y_true).astype(int).tolist(),
            "probabilities": np.asarray(self.probabilities, np.float64).round(6).tolist(),
            "per_class_recall": self.per_class_recall,
            "history": history,
            "selected_epoch": self.selected_epoch,
            "training": self.training,
            "model": self.model,
            "seconds": self.seconds,
            "backend": self.backend,
            "versions": self.versions,
            "machine": self.machine,
            "finished": self.finished,
            **({"protocol": self.unit.protocol, "held_out_speakers": list(self.held_out)} if self.held_out else {}),
        }

    @classmethod
    def from_json(cls, data):
        return cls(
            unit=Unit.from_json(data["unit"]),
            labels=tuple(data["labels"]),
            test_indices=np.asarray(data["test_indices"], dtype=int),
            y_true=np.asarray(data["y_true"], dtype=int),
            probabilities=np.asarray(data["probabilities"], dtype=np.float64).reshape(len(data["y_true"]), -1),
            history=data.get("history", {}),
            selected_epoch=data.get("selected_epoch"),
            training=data.get("training", {}),
            model=data.get("model", {}),
            seconds=data.get("seconds", 0.0),
            backend=data.get("backend", ""),
            versions=data.get("versions", {}),
            machine=data.get("machine", {}),
            finished=data.get("finished", ""),
            held_out=tuple(data.get("held_out_speakers", ())),
        )


def record_path(registry, unit):
    return os.path.join(registry, RECORDS, *unit.key.split("/")) + ".json"


def write_record(registry, record):
    """Writes a unit's record atomically; returns its path."""
    path = record_path(registry, record.unit)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, record.to_json())
    return path


def _key_of_path(path):
    parts = os.path.normpath(path)[: -len(".json")].split(os.sep)
    return "/".join(parts[len(parts) - 1 - parts[::-1].index(RECORDS) + 1:]) if RECORDS in parts else None


def read_record(path):
    """A record, checked against its place: a record copied under another unit's key is refused, not counted twice."""
    try:
        data = read_json(path)
        record = UnitRecord.from_json(data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RegistryError(f"{path} is not a readable registry record ({error}); delete it and the grid "
                            f"will recompute its unit") from None
    expected = _key_of_path(path)
    if expected is not None and (record.unit.key != expected or data.get("key", expected) != expected):
        raise RegistryError(f"{path} holds the record of unit {record.unit.key}, not of {expected}: it was copied or "
                            f"moved; delete it and the grid will recompute {expected}")
    return record


def finished_units(registry, damaged=None):
    """The set of unit keys with a readable record in its own place; a truncated or misplaced one is not finished.

    `damaged`, a list, receives (key, reason) of the records that are there but not usable.
    """
    root = os.path.join(registry, RECORDS)
    done = set()
    for path in glob.glob(os.path.join(root, "**", "*.json"), recursive=True):
        try:
            done.add(read_record(path).unit.key)
        except RegistryError as error:
            if damaged is not None:
                damaged.append((_key_of_path(path), str(error)))
    return done


@contextlib.contextmanager
def driver_lock(registry):
    """One grid driver per registry: a lock file with the driver's pid, taken over when its process is gone.

    Two drivers on one registry would train the same units twice and race on their records.
    """
    os.makedirs(registry, exist_ok=True)
    path = os.path.join(registry, LOCK)
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None:
                raise RegistryError(f"another grid driver ({owner}) is running on {registry}/; wait for it to finish or "
                                    f"stop it (a stale {LOCK} of a finished process is taken over)") from None
            os.remove(path)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(me)
        break
    try:
        yield
    finally:
        try:
            if open(path).read() == me:
                os.remove(path)
        except OSError:
            pass


def _lock_owner(path):
    """'host pid' of a live lock's owner, or None when the lock is stale (or unreadable)."""
    try:
        host, pid = open(path).read().split()
        pid = int(pid)
    except (OSError, ValueError):
        return None
    if host != socket.gethostname():
        return f"pid {pid} on {host}"  # another machine's process cannot be checked: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"pid {pid}"


def read_records(registry):
    """Every record of the registry, in key order."""
    root = os.path.join(registry, RECORDS)
    paths = sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True))
    return [read_record(p) for p in paths]
