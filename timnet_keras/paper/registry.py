"""The results registry: one small JSON record per finished unit of the reproduction grid, tracked in git.

A unit is one fold of one cross-validated cell (`cv`), or one source corpus
tested on all of one target (`cross`). The cross units of one source run
share one training on all of the source (`Unit.training_key`): the paper
trains each source once, and the model does not depend on the target. Its
records are written together (`write_records`). A record holds
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
`timnet_keras.features.normalise`) adds `-norm-<option>` last (`cv/EMODB/timnet/seed46-e500-speaker-norm-utterance/fold03`);
the paper's 10-fold float32 cells on raw MFCCs keep the plain names, so
the records written before any of these existed keep theirs. The baselines (`baselines.py`)
are cv cells of their own variants with 0 epochs (`cv/EMODB/mfcc_stats/seed46-e0/...`).
A cross record's `training["targets"]` names every target its one training was scored on.
"""
import contextlib
import dataclasses
import glob
import os
import socket
from dataclasses import dataclass

import numpy as np

from timnet_keras.errors import TimnetError
from timnet_keras.io import read_json, write_json_atomic
from timnet_keras.training.record import FoldRecord
from timnet_keras.schema import checked_fields

RECORDS = "records"
PENDING = "pending"  # journals of trainings whose records a stopped driver had not all written
LOCK = ".grid.lock"


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

    @property
    def training_key(self):
        """The training a unit's record comes from: a cross unit's is its source run, shared by all its targets.

        Example:
            >>> Unit("cross", "EMODB", "timnet", 46, 500, target="EMOVO").training_key
            'cross/EMODB/timnet/seed46-e500'
        """
        if self.kind != "cross":
            return self.key
        return "/".join(["cross", self.corpus, *self.cell.split("/")[2:]])

    def to_json(self):
        """The unit's fields; `normalise` only when not none, so a raw-MFCC unit's record reads as it always has."""
        data = dataclasses.asdict(self)
        if self.normalise == "none":
            del data["normalise"]
        return data

    @classmethod
    def from_json(cls, data, where="unit"):
        return cls(**checked_fields(cls, data, where))


def unit_record(unit, labels, test_indices, y_true, probabilities, **fields):
    """The FoldRecord of a grid unit: the record a run folder keeps, with the unit it belongs to."""
    return FoldRecord(unit.fold, np.asarray(test_indices), np.asarray(y_true), np.asarray(probabilities),
                      labels=tuple(labels), unit=unit, **fields)


def record_from_json(data, where="record"):
    """A registry record's JSON -> its FoldRecord, unit included; RecordError names an unknown or mistyped field."""
    if not isinstance(data, dict) or "unit" not in data:
        raise RegistryError(f"{where}: not a registry record (no 'unit')")
    return FoldRecord.from_json(data, where, unit=Unit.from_json(data["unit"], f"{where}: unit"))


def record_path(registry, unit):
    return os.path.join(registry, RECORDS, *unit.key.split("/")) + ".json"


def write_record(registry, record):
    """Writes a unit's record atomically; returns its path."""
    path = record_path(registry, record.unit)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, record.to_json())
    return path


def pending_path(registry, training_key):
    return os.path.join(registry, PENDING, training_key.replace("/", "+") + ".json")


def write_records(registry, records):
    """Writes the records of one training (one unit, or a source run's targets); returns their paths.

    Several records go first into one journal, `pending/<training>.json`, then each to its place, then
    the journal is removed. A driver stopped between two of them leaves the journal, from which
    `complete_pending` writes the rest at the next start: nothing is retrained, no target is lost.
    """
    if len(records) == 1:
        return [write_record(registry, records[0])]
    journal = pending_path(registry, records[0].unit.training_key)
    os.makedirs(os.path.dirname(journal), exist_ok=True)
    write_json_atomic(journal, {"records": [record.to_json() for record in records]})
    paths = [write_record(registry, record) for record in records]
    os.remove(journal)
    return paths


def _journals(registry):
    """[(journal path, its records or None when unreadable)]."""
    journals = []
    for path in sorted(glob.glob(os.path.join(registry, PENDING, "*.json"))):
        try:
            journals.append((path, [record_from_json(data, path) for data in read_json(path)["records"]]))
        except (OSError, ValueError, KeyError, TypeError):
            journals.append((path, None))
    return journals


def pending_units(registry):
    """Keys of the units held in a journal with no record in their place yet (`write_records`)."""
    done = finished_units(registry)
    return {r.unit.key for _, records in _journals(registry) for r in records or () if r.unit.key not in done}


def complete_pending(registry, log=print):
    """Writes the records left in journals by a stopped driver, then removes the journals; returns the keys written.

    A record already in its place is the journal's own (written from it) and is left alone. An
    unreadable journal is removed and said: its missing units are trained again.
    """
    journals = _journals(registry)
    if not journals:
        return []
    done, written = finished_units(registry), []
    for path, records in journals:
        if records is None:
            log(f"{path}: an unreadable journal, removed; its units without a record are trained again")
        for record in records or ():
            if record.unit.key not in done:
                write_record(registry, record)
                written.append(record.unit.key)
        os.remove(path)
    return written


def _key_of_path(path):
    parts = os.path.normpath(path)[: -len(".json")].split(os.sep)
    return "/".join(parts[len(parts) - 1 - parts[::-1].index(RECORDS) + 1:]) if RECORDS in parts else None


def read_record(path):
    """A record, checked against its place: a record copied under another unit's key is refused, not counted twice."""
    try:
        data = read_json(path)
        record = record_from_json(data, path)
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
