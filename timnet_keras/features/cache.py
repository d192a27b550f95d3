"""The per-corpus MFCC cache, `MFCC/<DATA>.npz`: safe to load, never half-written.

It holds x, one-hot y, label names, relative file paths, speakers and every
feature setting, and loads with `allow_pickle=False`. The authors' pickled
`MFCC/<DATA>.npy` (a dict with x and y) is read only when asked by name,
because unpickling runs code.
"""
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from timnet_keras.errors import TimnetError
from timnet_keras.io import write_atomic


class CacheError(TimnetError):
    """A feature cache that is missing or cannot be used; the message says what to do."""


@dataclass
class FeatureSet:
    x: np.ndarray  # (samples, frames, coefficients) float32
    y: np.ndarray  # (samples, classes) one-hot float32
    labels: tuple
    paths: tuple = ()
    speakers: tuple = ()
    settings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # in memory only, never cached: e.g. the eGeMAPS matrix of the baselines

    @property
    def classes(self):
        return np.argmax(self.y, axis=1)


def one_hot(class_indices, num_classes):
    return np.eye(num_classes, dtype=np.float32)[np.asarray(class_indices, dtype=int)]


def cache_path(mfcc_dir, data_name):
    return os.path.join(mfcc_dir, f"{data_name}.npz")


def save_feature_cache(path, features):
    """Write atomically: a temporary name, then rename.

    Names are stored as numpy strings, which drop trailing NUL characters; no file name,
    folder or speaker code holds one, so a name that does is refused rather than changed.
    """
    for kind in ("labels", "paths", "speakers"):
        bad = next((name for name in getattr(features, kind) if "\x00" in name), None)
        if bad is not None:
            raise CacheError(f"{kind}: {bad!r} holds a NUL character, which a feature cache cannot store; remove it")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                x=features.x.astype(np.float32),
                y=features.y.astype(np.float32),
                labels=np.array(features.labels, dtype=str),
                paths=np.array(features.paths, dtype=str),
                speakers=np.array(features.speakers, dtype=str),
                settings=np.array(json.dumps(features.settings)),
            )

    write_atomic(path, write)


CACHE_KEYS = ("x", "y", "labels", "paths", "speakers", "settings")


def _unreadable(path, reason):
    return CacheError(f"{path}: not a usable feature cache ({reason}); re-extract it with "
                      f"python Code/extract_feature.py (or remove it)")


def _checked(features, path):
    bad = int(np.size(features.x) - np.count_nonzero(np.isfinite(features.x)))
    if bad:
        raise CacheError(f"{path}: {bad} NaN or infinite feature values; re-extract it with python Code/extract_feature.py")
    if features.x.ndim != 3 or features.y.ndim != 2 or len(features.x) != len(features.y) or len(features.labels) != features.y.shape[1]:
        raise _unreadable(path, f"shapes x {features.x.shape}, y {features.y.shape}, {len(features.labels)} labels do not fit")
    return features


def load_feature_cache(path, labels=None, allow_pickle=False):
    """Load `MFCC/<DATA>.npz`, or the authors' `.npy` dict when `allow_pickle`.

    `labels` names the classes of an authors' `.npy`, which stores none. A
    damaged, truncated or foreign file, or one with NaN or infinite values,
    raises CacheError naming the file and what to do.
    """
    npz, npy = os.path.splitext(path)[0] + ".npz", os.path.splitext(path)[0] + ".npy"
    if os.path.isfile(npz):
        try:
            with np.load(npz, allow_pickle=False) as data:
                missing = [key for key in CACHE_KEYS if key not in data.files]
                if missing:
                    raise _unreadable(npz, f"no {', '.join(repr(k) for k in missing)} array")
                features = FeatureSet(
                    x=data["x"],
                    y=data["y"],
                    labels=tuple(str(v) for v in data["labels"]),
                    paths=tuple(str(v) for v in data["paths"]),
                    speakers=tuple(str(v) for v in data["speakers"]),
                    settings=json.loads(str(data["settings"])),
                )
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise _unreadable(npz, type(error).__name__ + (f": {error}" if str(error) else "")) from None
        return _checked(features, npz)
    if os.path.isfile(npy):
        if not allow_pickle:
            raise CacheError(
                f"{npy} is an authors' pickled cache; loading it runs code from the file. "
                f"Pass --allow-pickle if you trust it, or re-extract with Code/extract_feature.py"
            )
        try:
            data = np.load(npy, allow_pickle=True).item()
            x, y = np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"], dtype=np.float32)
        except Exception as error:  # a pickle can fail in any way
            raise _unreadable(npy, f"{type(error).__name__}: {error}") from None
        names = tuple(labels) if labels else tuple(f"class_{i}" for i in range(y.shape[1]))
        return _checked(FeatureSet(x, y, names, settings={"source": "authors' .npy"}), npy)
    raise CacheError(f"no feature cache at {npz}")


def load_features(mfcc_dir, data_name, allow_pickle=False, labels=None):
    """The cache of `data_name` under `mfcc_dir`; CacheError says which extract command makes it."""
    path = cache_path(mfcc_dir, data_name)
    if not any(os.path.isfile(os.path.splitext(path)[0] + ext) for ext in (".npz", ".npy")):
        wav = "" if data_name == "DEMO" else " --wav_dir PATH"
        raise CacheError(f"no features for {data_name} at {path}; run: python Code/extract_feature.py --data_name {data_name}{wav} "
                         f"(or pass --wav_dir to main.py)")
    return load_feature_cache(path, labels=labels, allow_pickle=allow_pickle)
