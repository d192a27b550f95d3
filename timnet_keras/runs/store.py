"""The layout of a run folder, `Models/<DATA>_<seed>_<time>/`, and nothing else.

A run folder holds `run_config.json`, one weights file per finished fold in
the authors' HDF5 naming (`{k}-fold_weights_best_{i}.hdf5`) and one
`fold_{i}.json` record of its test predictions. A fold is finished when both
of its files exist; both are written atomically, weights first. The authors'
released folders hold weights only; they are recognised and described with
the corpus table.
"""
import dataclasses
import glob
import os
import re


from timnet_keras.errors import TimnetError
from timnet_keras.config import CORPORA, MODEL_VARIANTS, canonical_name, default_num_blocks, default_seed
from timnet_keras.io import read_json, time_stamp, write_json_atomic
from timnet_keras.features.preprocessor import MfccPreprocessor
from timnet_keras.runs.run_config import ModelConfig, RunConfig
from timnet_keras.training.record import FoldRecord  # noqa: F401  (the one record of a fold: run folders and the registry)
from timnet_keras.schema import RecordError

RUN_CONFIG = "run_config.json"
AUTHORS_SOURCE = "authors' released weights (epochs selected on the test folds)"
_FOLD_FILE = re.compile(r"^(\d+)-fold_weights_best_(\d+)\.hdf5$")


class RunStoreError(TimnetError):
    """A run folder that cannot be used as asked; the message says what to do."""


# --- names ----------------------------------------------------------------------------------

def fold_weights_name(n_folds, fold):
    """The authors' fold file name.

    Example:
        >>> fold_weights_name(10, 3)
        '10-fold_weights_best_3.hdf5'
    """
    return f"{n_folds}-fold_weights_best_{fold}.hdf5"


def fold_weights_path(run_dir, n_folds, fold):
    return os.path.join(run_dir, fold_weights_name(n_folds, fold))


def batched_checkpoint_path(run_dir):
    """The batched trainer's state after its last finished chunk of epochs (removed when the folds finish)."""
    return os.path.join(run_dir, "batched_checkpoint.npz")


def fold_record_path(run_dir, fold):
    return os.path.join(run_dir, f"fold_{fold}.json")


# --- writing -------------------------------------------------------------------------------

def run_dir_name(data_name, seed, stamp, variant="timnet", precision="float32", normalise="none"):
    """`<DATA>[_<variant>][_<precision>][_norm-<normalise>]_<seed>_<time>`: a tcn, bfloat16 or normalised run does not
    look like the default one.

    Example:
        >>> run_dir_name("EMODB", 46, "2026-12-03_10-00-00"), run_dir_name("EMODB", 46, "t", "tcn", "bfloat16")
        ('EMODB_46_2026-12-03_10-00-00', 'EMODB_tcn_bfloat16_46_t')
        >>> run_dir_name("EMODB", 46, "t", normalise="speaker")
        'EMODB_norm-speaker_46_t'
    """
    parts = [data_name] + ([variant] if variant != "timnet" else []) + ([precision] if precision != "float32" else [])
    parts += [f"norm-{normalise}"] if normalise != "none" else []
    return "_".join(parts + [str(seed), stamp])


def create_run_dir(model_path, data_name, seed, variant="timnet", precision="float32", normalise="none"):
    """A new, empty run folder; two runs started in the same second get different ones."""
    os.makedirs(model_path, exist_ok=True)
    base = os.path.join(model_path, run_dir_name(data_name, seed, time_stamp(), variant, precision, normalise))
    for attempt in range(1, 1000):
        path = base if attempt == 1 else f"{base}_{attempt}"
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
    raise RunStoreError(f"could not create a new run folder beside {base}")


def write_run_config(run_dir, run_config):
    write_json_atomic(os.path.join(run_dir, RUN_CONFIG), run_config.to_json())


def write_fold_record(run_dir, record):
    write_json_atomic(fold_record_path(run_dir, record.fold), record.to_json())


# --- reading -------------------------------------------------------------------------------

def is_run_dir(path):
    return os.path.isfile(os.path.join(path, RUN_CONFIG))


def _read_record(path, make, what_to_do):
    try:
        return make(read_json(path))
    except RecordError as error:  # it names the field: keep its words, with the path
        raise RunStoreError(f"{path}: {str(error).split(': ', 1)[-1]}; {what_to_do}") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunStoreError(f"{path}: damaged or not ours ({type(error).__name__}); {what_to_do}") from None


def read_run_config(run_dir):
    path = os.path.join(run_dir, RUN_CONFIG)
    if not os.path.isfile(path):
        raise RunStoreError(f"{run_dir}: no {RUN_CONFIG} there; is it a run folder under Models/?")
    run_config = _read_record(path, RunConfig.from_json, "restore it, or remove the run folder and train again")
    _check_consistent(run_config, path)
    return run_config


def _check_consistent(run_config, path):
    """Fields that must agree with each other: a hand edit that breaks one is named, not a traceback later."""
    from timnet_keras.config import NORMALISATIONS
    from timnet_keras.features.preprocessor import frames_for

    model, problem = run_config.model, None
    length = (run_config.features or {}).get("mean_signal_length")
    if run_config.labels and len(run_config.labels) != model.num_classes:
        problem = f"{len(run_config.labels)} labels but model.num_classes {model.num_classes}"
    elif isinstance(length, int) and model.frames is not None and frames_for(length) != model.frames:
        problem = f"features.mean_signal_length {length} gives {frames_for(length)} frames but model.frames is {model.frames}"
    elif model.variant not in MODEL_VARIANTS:
        problem = f"model.variant {model.variant!r} is not one of {', '.join(MODEL_VARIANTS)}"
    elif run_config.normalise not in NORMALISATIONS:
        problem = f"normalise {run_config.normalise!r} is not one of {', '.join(NORMALISATIONS)}"
    if problem:
        raise RunStoreError(f"{path}: {problem}; restore it, or remove the run folder and train again")


def read_fold_record(run_dir, fold):
    path = fold_record_path(run_dir, fold)
    return _read_record(path, lambda data: FoldRecord.from_json(data, path),
                        f"remove it and --resume {run_dir} to re-train fold {fold}")


def _fold_is_intact(run_dir, n_folds, fold):
    from timnet_keras.model.checkpoints import is_readable_weights_file

    try:
        read_fold_record(run_dir, fold)
    except RunStoreError:
        return False
    return is_readable_weights_file(fold_weights_path(run_dir, n_folds, fold))


def finished_folds(run_dir, n_folds):
    """Folds whose weights and record are both on disk and readable.

    A fold whose files a killed process left damaged counts as unfinished:
    --resume trains it again and overwrites them.
    """
    return [fold for fold in range(1, n_folds + 1)
            if os.path.isfile(fold_record_path(run_dir, fold)) and os.path.isfile(fold_weights_path(run_dir, n_folds, fold))
            and _fold_is_intact(run_dir, n_folds, fold)]


def remove_temporaries(run_dir):
    """Deletes what a killed process left half-written (`*.tmp-<pid>*`); returns their names."""
    stale = [name for name in os.listdir(run_dir) if ".tmp-" in name]
    for name in stale:
        os.remove(os.path.join(run_dir, name))
    return stale


def newest_run(model_path, data_name):
    """The newest finished run of `data_name`: an unfinished or failed one (folds missing) is never picked."""
    runs = sorted((d for d in glob.glob(os.path.join(model_path, f"{data_name}_*")) if is_run_dir(d)),
                  key=os.path.getmtime, reverse=True)
    for run in runs:
        try:
            read_saved_run(run)
            return run
        except RunStoreError:
            continue
    if runs:
        raise RunStoreError(f"no finished {data_name} run under {model_path}: the newest, {runs[0]}, has folds missing; "
                            f"finish it with --mode train --resume {runs[0]}, or pass --test_path FOLDER")
    raise RunStoreError(f"no {data_name} run under {model_path}; train one first or pass --test_path FOLDER")


def describe_run(folder, run_config, n_folds):
    """The line every command that uses a run prints first: which run, what it is, when it was trained."""
    if run_config.source:
        return f"run: {folder} ({run_config.source}; {run_config.data}, {n_folds} folds)"
    created = run_config.created.replace("_", " ") or "date unknown"
    normalised = f", {run_config.normalise}-normalised features" if run_config.normalise != "none" else ""
    return (f"run: {folder} ({run_config.model.variant}, {run_config.training.epoch} epochs, {n_folds} folds, "
            f"{run_config.training.precision}{normalised}, trained {created})")


def check_corpus(folder, run_config, data_name):
    """Refuses a run or an authors' folder of another corpus than --data (its labels would be misnamed)."""
    stored = canonical_name(run_config.data) or run_config.data
    if run_config.source:  # an authors' folder: its name says the corpus (EMODB_46)
        prefix = os.path.basename(os.path.normpath(folder)).split("_")[0]
        stored = canonical_name(prefix) or stored
    wanted = canonical_name(data_name) or data_name
    if stored != wanted:
        raise RunStoreError(f"{folder} holds a {stored} model but --data is {data_name}: its outputs are {stored}'s "
                            f"emotions; pass --data {stored}, or a {data_name} run as --test_path")


def fold_calibrations(weight_files):
    """[calibration dict or None] per fold weights file: from the fold records beside ours, None for the authors'."""
    calibrations = []
    for fold, path in enumerate(weight_files, start=1):
        folder = os.path.dirname(path)
        record = fold_record_path(folder, fold)
        calibrations.append(read_fold_record(folder, fold).calibration if is_run_dir(folder) and os.path.isfile(record)
                            else None)
    return calibrations


def fold_weight_files(folder):
    """[weights path per fold] of a folder of `{k}-fold_weights_best_{i}.hdf5` files, checked complete."""
    if not os.path.isdir(folder):
        raise RunStoreError(f"{folder}: no such folder")
    files = {}
    for name in os.listdir(folder):
        match = _FOLD_FILE.match(name)
        if match:
            files.setdefault(int(match.group(1)), {})[int(match.group(2))] = os.path.join(folder, name)
    if not files:
        raise RunStoreError(f"{folder} holds no fold weights ({{k}}-fold_weights_best_{{i}}.hdf5); finished folds may be missing")
    if len(files) > 1:
        raise RunStoreError(f"{folder} mixes weights of {sorted(files)}-fold runs; keep one run per folder")
    ((k, by_fold),) = files.items()
    if sorted(by_fold) != list(range(1, k + 1)):
        raise RunStoreError(f"{folder} has weights for folds {sorted(by_fold)} of a {k}-fold run; the fold count does not match "
                            f"the files (finish the run with --resume, or use a complete folder)")
    return [by_fold[i] for i in range(1, k + 1)]


def authors_run_config(corpus, n_folds, seed=None):
    """What the authors' released weights of a known corpus are: the corpus table's model, folds and seed."""
    key = canonical_name(corpus)
    if key is None:
        raise RunStoreError(f"{corpus!r} is not a corpus of the table; an authors' weights folder needs one of "
                            f"{', '.join(sorted(CORPORA))} (our run folders carry their own {RUN_CONFIG})")
    spec = CORPORA[key]
    preprocessor = MfccPreprocessor(spec.mean_signal_length)
    model = ModelConfig(frames=preprocessor.frames, num_classes=len(spec.labels), num_blocks=default_num_blocks(key))
    return RunConfig(data=key, model=model, protocol="kfold", selection="best-test",
                     seed=default_seed(key) if seed is None else seed, split_fold=n_folds, n_folds=n_folds,
                     labels=spec.labels, features=preprocessor.get_config(), source=AUTHORS_SOURCE)


def read_saved_run(folder, corpus=None, seed=None):
    """(RunConfig, [weights path per fold]) of our run folder or of an authors' weights folder.

    An authors' folder needs `corpus` (and takes `seed`, default the table's).
    The model settings our weights files carry take precedence over the table's.
    """
    files = fold_weight_files(folder)
    if is_run_dir(folder):
        run_config = read_run_config(folder)
        expected = run_config.n_folds or len(files)
        if expected != len(files):
            raise RunStoreError(f"{folder} holds {len(files)} fold weights but its run has {expected} folds")
        return run_config, files
    if corpus is None:
        raise RunStoreError(f"{folder} has no {RUN_CONFIG}: name the corpus of these weights (--data CORPUS)")
    run_config = authors_run_config(corpus, len(files), seed)
    from timnet_keras.model.checkpoints import read_checkpoint_config

    stored = read_checkpoint_config(files[0])
    if stored:
        run_config.model = ModelConfig.from_dict({**dataclasses.asdict(run_config.model), **stored})
    return run_config, files
