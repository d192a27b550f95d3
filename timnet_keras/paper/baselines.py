"""Two simple baselines on the very folds TIM-Net is scored on: utterance statistics and a linear classifier.

`mfcc_stats`: statistics of our own MFCC cache over its frames (per
coefficient: mean, standard deviation, minimum, maximum, the two quartiles
and the mean absolute frame-to-frame change; 7 x 39 = 273 values). The
frames are the cache's, padded or cropped to the corpus' length as TIM-Net
sees them. No new dependency.

`egemaps`: the 88 eGeMAPS v02 functionals of each recording, computed by
audEERING's `opensmile` package (`pip install 'timnet-keras[baselines]'`).
opensmile is NOT under this project's MIT licence. The `License` field of
its package metadata (opensmile 2.6.0, checked with importlib.metadata) is
the "audEERING Research License Agreement": use, copying and distribution for
non-commercial purposes (teaching, academic research, personal use) and for
commercial research not tied to product development; any other commercial
use, including features extracted with it in a product, needs a licence
from audEERING. (The same metadata also carries the trove classifier "OSI
Approved :: MIT License", which contradicts the licence text it ships; we
go by the text.) Install it only where those terms fit; this project does
not depend on it. Without it installed the eGeMAPS units are skipped with a
message and everything else runs. The functionals need the audio, so they
are cached once per corpus beside the MFCC cache, `MFCC/<DATA>.egemaps.npz`,
keyed by the corpus' file list (a cache of another file list is recomputed).

Both feed one classifier: scikit-learn's StandardScaler then
LogisticRegression, in a Pipeline fitted on the training part of a fold
only. Its regularisation strength C is chosen from `C_GRID` by an inner
cross-validation on that same training part (balanced accuracy, i.e. UAR):
StratifiedKFold under the 10-fold protocol, GroupKFold by speaker under
leave-one-speaker-out, so C is chosen for speakers it has not seen. The
test part never enters a fit.

Each also runs per-speaker standardised (`*_spk` variants): before the
classifier, every speaker's features are centred and scaled by that
speaker's own mean and standard deviation. A speaker with recordings in the
training part is scaled by the statistics of those; a speaker absent from
it (the held-out speaker of a leave-one-speaker-out fold) by its own test
recordings, unlabelled. So no label of the test part is read, and under
10-fold nothing of the test part changes what is fitted.
"""
import hashlib
import json
import os
import time
import warnings

import numpy as np

from timnet_keras.errors import TimnetError

MFCC_STATS, EGEMAPS = "mfcc_stats", "egemaps"
SPEAKER_SUFFIX = "_spk"
BASELINES = (MFCC_STATS, MFCC_STATS + SPEAKER_SUFFIX, EGEMAPS, EGEMAPS + SPEAKER_SUFFIX)
BASELINE_EPOCHS = 0  # a baseline trains no epochs: its cells are `seed<S>-e0`
BASELINE_NAMES = {MFCC_STATS: "MFCC statistics", MFCC_STATS + SPEAKER_SUFFIX: "MFCC statistics, per speaker",
                  EGEMAPS: "eGeMAPS", EGEMAPS + SPEAKER_SUFFIX: "eGeMAPS, per speaker"}
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
INNER_FOLDS = 3  # 5 C values x 3 inner folds: every fold of the three corpora in seconds on a busy 2-core machine
MFCC_STATISTICS = ("mean", "std", "min", "max", "q25", "q75", "mean_abs_delta")
INSTALL = "pip install 'timnet-keras[baselines]' (audEERING's opensmile, research/non-commercial licence)"


class BaselineError(TimnetError):
    """A baseline that cannot run as asked; the message says what to do."""


def is_baseline(variant):
    return variant in BASELINES


def feature_kind(variant):
    """'mfcc_stats' or 'egemaps': the features a baseline variant reads."""
    return variant[: -len(SPEAKER_SUFFIX)] if variant.endswith(SPEAKER_SUFFIX) else variant


def opensmile_available():
    try:
        import opensmile  # noqa: F401
    except ImportError:
        return False
    return True


# --- features ----------------------------------------------------------------------------------

def mfcc_statistics(x):
    """(samples, frames, coefficients) -> (samples, 7 x coefficients): `MFCC_STATISTICS` per coefficient.

    Example:
        >>> mfcc_statistics(np.arange(6, dtype=float).reshape(1, 3, 2)).shape
        (1, 14)
    """
    x = np.asarray(x, dtype=np.float64)
    q25, q75 = np.percentile(x, [25, 75], axis=1)
    delta = np.abs(np.diff(x, axis=1)).mean(axis=1) if x.shape[1] > 1 else np.zeros((len(x), x.shape[2]))
    return np.concatenate([x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1), q25, q75, delta], axis=1)


def file_list_digest(paths):
    return hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()


def egemaps_cache_path(mfcc_dir, data_name):
    return os.path.join(mfcc_dir, f"{data_name}.egemaps.npz")


def _smile():
    try:
        import opensmile
    except ImportError:
        raise BaselineError(f"the eGeMAPS baseline needs opensmile: {INSTALL}") from None
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def _egemaps_rows(job, log=print):
    """The functionals of every recording of a job (see `egemaps_features`), in its order: from the audio under
    its wav_dir, or, for DEMO, from the synthetic signals (regenerated from the cache's settings)."""
    smile = _smile()
    name, paths = job["data_name"], tuple(job["paths"])
    rows = []
    if name == "DEMO":
        from timnet_keras.config import SAMPLE_RATE
        from timnet_keras.features.demo import synthesize_demo_corpus

        items = synthesize_demo_corpus(job["settings"]["utterances"], job["settings"]["synthetic_seed"])
        if tuple(p for p, _, _, _ in items) != paths:
            raise BaselineError("DEMO: the cache's file list is not the generator's; re-extract it")
        rows = [smile.process_signal(signal, SAMPLE_RATE).to_numpy()[0] for _, _, _, signal in items]
    else:
        wav_dir = job["wav_dir"]
        if not wav_dir or not os.path.isdir(wav_dir):
            raise BaselineError(f"the eGeMAPS baseline of {name} needs its audio once (then it is cached): pass "
                                f"--corpora_dir, the folder holding {name}/")
        start = time.time()
        for k, relative in enumerate(paths):
            rows.append(smile.process_file(os.path.join(wav_dir, relative)).to_numpy()[0])
            if (k + 1) % 200 == 0:
                log(f"eGeMAPS {name}: {k + 1} of {len(paths)} files ({time.time() - start:.0f} s)")
    return np.asarray(rows, dtype=np.float64), tuple(smile.feature_names)


def compute_egemaps_cache(job, log=print):
    """Computes the functionals of a job and writes its cache: in a process without TensorFlow (see below)."""
    import opensmile

    from timnet_keras.io import write_atomic

    x, names = _egemaps_rows(job, log)
    settings = {"feature_set": "eGeMAPSv02", "feature_level": "Functionals", "opensmile": opensmile.__version__}

    def write(tmp):
        with open(tmp, "wb") as handle:
            np.savez(handle, x=x, paths=np.array(job["paths"], dtype=str), digest=np.array(job["digest"]),
                     names=np.array(names, dtype=str), settings=np.array(json.dumps(settings)))

    os.makedirs(os.path.dirname(os.path.abspath(job["cache"])), exist_ok=True)
    write_atomic(job["cache"], write)


def _cached(path, digest, paths):
    if not os.path.isfile(path):
        return None
    with np.load(path, allow_pickle=False) as data:
        if str(data["digest"]) == digest and tuple(str(p) for p in data["paths"]) == tuple(paths):
            return data["x"]
    return None


def egemaps_features(features, mfcc_dir, wav_dir=None, log=print):
    """The (samples, 88) eGeMAPS functionals of a corpus, from its cache beside the MFCC cache or computed and cached.

    The cache holds the file list it was computed for; a cache of another list (a re-extracted corpus) is
    recomputed, never used for the wrong files. They are computed in a child Python process: opensmile's native
    library corrupts the heap (`malloc(): invalid size`) in a process where TensorFlow was imported before it,
    as the grid's driver has.
    """
    import subprocess
    import sys
    import tempfile

    if not opensmile_available():
        raise BaselineError(f"the eGeMAPS baseline needs opensmile: {INSTALL}")
    name = features.settings.get("data_name", "corpus")
    path = egemaps_cache_path(mfcc_dir, name)
    digest = file_list_digest(features.paths)
    x = _cached(path, digest, features.paths)
    if x is not None:
        return x
    if os.path.isfile(path):
        log(f"{path}: computed for another file list; recomputing")
    start = time.time()
    job = {"data_name": name, "paths": list(features.paths), "digest": digest, "cache": os.path.abspath(path),
           "wav_dir": os.path.abspath(wav_dir) if wav_dir else None, "settings": features.settings}
    with tempfile.TemporaryDirectory() as folder:
        job_path = os.path.join(folder, "job.json")
        with open(job_path, "w") as handle:
            json.dump(job, handle)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([sys.executable, "-m", "timnet_keras.paper.baselines", job_path], env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "no output").strip().splitlines()
        raise BaselineError(f"eGeMAPS of {name} failed: {lines[-1] if lines else done.returncode}")
    x = _cached(path, digest, features.paths)
    if x is None:
        raise BaselineError(f"eGeMAPS of {name}: {path} was not written for this file list")
    log(f"eGeMAPS of {name}: {x.shape} in {time.time() - start:.0f} s, cached in {path}")
    return x


def baseline_matrix(variant, source):
    """The feature matrix of a baseline variant for FeatureSet `source` (eGeMAPS: attached by the driver)."""
    if feature_kind(variant) == MFCC_STATS:
        return mfcc_statistics(source.x)
    matrix = getattr(source, "extra", {}).get(EGEMAPS)
    if matrix is None:
        raise BaselineError(f"no eGeMAPS features attached to {source.settings.get('data_name', 'the corpus')}; "
                            f"the grid's driver computes them (opensmile: {INSTALL})")
    return np.asarray(matrix, dtype=np.float64)


def speaker_standardised(x, speakers, train):
    """Each speaker's rows scaled by its own mean and deviation: of its training rows, or (a speaker with none) of
    all its rows. A zero deviation scales by 1.

    Example:
        >>> x = np.array([[1.0], [3.0], [10.0], [30.0]])
        >>> speaker_standardised(x, ["a", "a", "b", "b"], np.array([0, 1])).ravel().tolist()
        [-1.0, 1.0, -1.0, 1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    speakers = np.asarray(speakers)
    in_train = np.zeros(len(x), bool)
    in_train[np.asarray(train, dtype=int)] = True
    out = np.empty_like(x)
    for speaker in np.unique(speakers):
        rows = speakers == speaker
        reference = x[rows & in_train] if (rows & in_train).any() else x[rows]
        std = reference.std(axis=0)
        out[rows] = (x[rows] - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return out


# --- the classifier ----------------------------------------------------------------------------

def inner_splits(y, groups, seed):
    """The inner cross-validation of a training part: GroupKFold by speaker when `groups`, else StratifiedKFold."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        n = min(INNER_FOLDS, len(np.unique(groups)))
        if n < 2:
            raise BaselineError("choosing C by speaker needs at least two speakers in the training part")
        return list(GroupKFold(n).split(np.zeros(len(y)), y, groups)), f"GroupKFold({n}) by speaker"
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0
    n = max(2, min(INNER_FOLDS, int(smallest)))
    splitter = StratifiedKFold(n, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class rarer than the folds: sklearn warns and still splits
        warnings.simplefilter("ignore")
        return list(splitter.split(np.zeros(len(y)), y)), f"StratifiedKFold({n})"


def fit_classifier(x_train, y_train, groups=None, seed=46):
    """StandardScaler + LogisticRegression fitted on the training part alone, C chosen by inner CV on it.

    Returns (the fitted Pipeline, the chosen C, the inner CV's description).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=3000))])
    splits, inner = inner_splits(np.asarray(y_train), groups, seed)
    search = GridSearchCV(pipeline, {"classify__C": list(C_GRID)}, cv=splits, scoring="balanced_accuracy",
                          refit=True, n_jobs=1, error_score="raise")
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):  # small matrices: one BLAS thread is 20 times
        warnings.simplefilter("ignore", ConvergenceWarning)  # faster than several on a busy machine
        warnings.simplefilter("ignore", UserWarning)  # an inner fold without a class: balanced accuracy warns
        search.fit(x_train, y_train)
    return search.best_estimator_, float(search.best_params_["classify__C"]), inner


def fit_fold(variant, x, classes, speakers, train, protocol, seed):
    """The inputs of a fold after a variant's speaker standardisation, and the classifier fitted on its training part.

    Returns (inputs for every row, Pipeline, C, inner CV description).
    """
    inputs = speaker_standardised(x, speakers, train) if variant.endswith(SPEAKER_SUFFIX) else np.asarray(x, float)
    groups = np.asarray(speakers)[train] if protocol == "speaker" else None
    pipeline, c, inner = fit_classifier(inputs[train], np.asarray(classes)[train], groups, seed)
    return inputs, pipeline, c, inner


def class_probabilities(pipeline, x, n_classes):
    """predict_proba with a column for every label (0 for a class the training part lacked)."""
    out = np.zeros((len(x), n_classes))
    out[:, pipeline.classes_] = pipeline.predict_proba(x)
    return out


def run_baseline_fold(unit, source, train, test):
    """One fold of a baseline unit: (probabilities of the test part, training description, model description)."""
    x = baseline_matrix(unit.variant, source)
    if unit.variant.endswith(SPEAKER_SUFFIX) and (len(source.speakers) != len(x) or "" in source.speakers):
        raise BaselineError(f"{unit.variant}: per-speaker standardisation needs a speaker for every file")
    speakers = np.asarray(source.speakers) if len(source.speakers) == len(x) else np.zeros(len(x), str)
    inputs, pipeline, c, inner = fit_fold(unit.variant, x, source.classes, speakers, train, unit.protocol, unit.seed)
    probabilities = class_probabilities(pipeline, inputs[test], len(source.labels))
    training = {"protocol": unit.protocol, "features": feature_kind(unit.variant), "n_features": int(x.shape[1]),
                "speaker_standardised": unit.variant.endswith(SPEAKER_SUFFIX),
                "classifier": "StandardScaler + LogisticRegression (lbfgs, multinomial, max_iter 3000)",
                "C": c, "C_grid": list(C_GRID), "inner_cv": inner, "inner_scoring": "balanced_accuracy",
                "train_size": int(len(train))}
    if feature_kind(unit.variant) == MFCC_STATS:
        training["statistics"] = list(MFCC_STATISTICS)
    classify = pipeline.named_steps["classify"]
    model = {"classes": [int(k) for k in classify.classes_], "n_iter": int(np.max(classify.n_iter_)),
             "num_classes": len(source.labels)}
    return probabilities, training, model


if __name__ == "__main__":  # the child process of `egemaps_features`: python -m timnet_keras.paper.baselines JOB.json
    import sys

    with open(sys.argv[1]) as handle:
        compute_egemaps_cache(json.load(handle))
