"""The train and test jobs: a cross-validated run into `Models/<run>/`, saved folds scored into `Results/`."""
import os
import sys
import time

import numpy as np

from timnet_keras.runs import store as run_store
from timnet_keras.model.classifier import TimnetClassifier
from timnet_keras.model.checkpoints import load_legacy_weights, save_legacy_weights
from timnet_keras.errors import RunError
from timnet_keras.training.folds import make_folds
from timnet_keras.features.normalise import check_raw_cache, check_speakers, fold_views
from timnet_keras.io import time_stamp, versions
from timnet_keras.training.plan import fold_job
from timnet_keras.training.record import FoldRecord, with_provenance
from timnet_keras.runs.results import run_header, write_results
from timnet_keras.runs.run_config import RunConfig
from timnet_keras.training.trainers import choose_trainer


def new_run_config(features, data_name, model_config, training, protocol, selection, seed, split_fold, jit_compile=True,
                   trainer="sequential", calibrate=False, normalise="none"):
    """The RunConfig of a new training run on a FeatureSet (`calibrate`: hold out calibration rows, see training;
    `normalise`: the feature normalisation, `timnet_keras.features.normalise`)."""
    return RunConfig(data=data_name, model=model_config, training=training, protocol=protocol, selection=selection,
                     seed=seed, split_fold=split_fold, n_samples=int(len(features.x)), labels=tuple(features.labels),
                     features=features.settings, jit_compile=jit_compile, trainer=trainer, versions=versions(),
                     command=" ".join(sys.argv), created=time_stamp(), calibrate=calibrate, normalise=normalise)


def check_features(features, run_config):
    """Refuses a cache that is not the raw MFCCs the run normalises (or lacks the speakers `speaker` needs)."""
    check_raw_cache(features, run_config.normalise, f"the {run_config.data} feature cache")
    check_speakers(features, run_config.normalise)


def train(features, run_config, model_path, result_path, resume=None, log=print, run_eagerly=False):
    """The train mode: k-fold CV into a new run folder (or `resume` one), results into Results/<run>/.

    `run_eagerly` trains the sequential way without a graph (debugging); it is how, not what, so the run does not store it.
    """
    if resume:
        run_dir = resume.rstrip("/")
        trainer = run_config.trainer  # how to train is this process' choice; what to train is the run's
        run_config = run_store.read_run_config(run_dir)
        if trainer == "batched" and not run_config.jit_compile:
            log("the run trains without XLA (--no-xla), which the batched program cannot: resuming fold after fold")
            trainer = "sequential"
        run_config.trainer = trainer
        if run_config.n_samples != len(features.x):
            raise RunError(f"--resume: the run was trained on {run_config.n_samples} samples, the cache has {len(features.x)}")
        check_features(features, run_config)
    else:
        check_trainable(features)
        check_features(features, run_config)
        make_folds(features, run_config.protocol, run_config.split_fold, run_config.seed)  # refuse before any folder exists
        run_dir = run_store.create_run_dir(model_path, run_config.data, run_config.seed, run_config.model.variant,
                                           run_config.training.precision, run_config.normalise)
    normalised = f", {run_config.normalise}-normalised features" if run_config.normalise != "none" else ""
    log(f"run folder: {run_dir} ({run_config.protocol} folds, {run_config.selection_note}{normalised})")
    start = time.time()
    try:
        records = run_cross_validation(features, run_config, run_dir, log=log, run_eagerly=run_eagerly)
    except KeyboardInterrupt as stop:  # the message names this run, not a placeholder
        stop.resume_command = f"python Code/main.py --mode train --resume {run_dir}"
        raise
    header = run_header(run_config, mode="train", run_dir=run_dir)
    header["wall_seconds"] = round(time.time() - start, 1)
    histories = [(r.fold, r.history) for r in records]
    result_dir = os.path.join(result_path, os.path.basename(run_dir))
    return write_results(result_dir, records, features.labels, header, histories, log=log)


def check_trainable(features):
    """Refuses a corpus a classifier cannot learn from: fewer than two classes with utterances."""
    present = [label for label, n in zip(features.labels, np.asarray(features.y).sum(axis=0)) if n > 0]
    if len(present) < 2:
        raise RunError(f"the corpus has utterances of {len(present)} class{'es' if len(present) != 1 else ''} "
                       f"({', '.join(present) or 'none'}); training needs at least two: re-extract with more class folders")


def run_cross_validation(features, run_config, run_dir, log=print, run_eagerly=False):
    """Trains every unfinished fold of `run_config` (a RunConfig) in `run_dir`; returns the FoldRecords.

    Each finished fold leaves its weights (the authors' HDF5 layout) and its record in the run
    folder (`runs.store`), so a killed run loses at most the folds in progress. The run's
    `trainer` picks the Trainer (`trainers.choose_trainer`): the grid trains its units the same way. Each fold
    trains and tests on the run's normalisation of the features (`normalise.fold_views`).

    `run_eagerly` trains without a graph (same numbers up to summation order; tests and debugging).
    """
    folds = make_folds(features, run_config.protocol, run_config.split_fold, run_config.seed)
    n_folds = len(folds)
    run_config.n_folds = n_folds
    run_store.write_run_config(run_dir, run_config)
    stale = run_store.remove_temporaries(run_dir)
    if stale:
        log(f"removed what an interrupted process left half-written: {', '.join(stale)}")
    done = set(run_store.finished_folds(run_dir, n_folds))
    if done:
        log(f"resuming {run_dir}: folds {sorted(done)} already finished")
    todo = [(fold, train, test) for fold, (train, test) in enumerate(folds, start=1) if fold not in done]
    views = fold_views(features, run_config.normalise, [(train, test) for _, train, test in todo])
    jobs = [fold_job(features, train, test, fold, run_config.seed, run_config.selection, run_config.calibrate)
            for fold, train, test in todo]

    def keep(model, record):
        record = with_provenance(record, run_config.training, run_config.model, run_config.selection, run_config.protocol,
                                 normalise=run_config.normalise)
        save_legacy_weights(model, run_store.fold_weights_path(run_dir, n_folds, record.fold), run_config.model.backbone_kwargs())
        run_store.write_fold_record(run_dir, record)
        accuracy = 100 * np.mean(np.argmax(record.probabilities, 1) == record.y_true)
        scaled = f", temperature {record.temperature:.3f}" if record.calibration else ""
        log(f"fold {record.fold}/{n_folds}: WAR {accuracy:.2f} % (epoch {record.selected_epoch}, {record.seconds} s{scaled})")

    if jobs:
        trainer = choose_trainer(run_config.trainer, run_config.model, run_config.training, run_config.seed,
                                 run_config.selection, run_config.jit_compile, run_eagerly)
        trainer.train(views, jobs, on_fold=keep, checkpoint=run_store.batched_checkpoint_path(run_dir), log=log)
    return [run_store.read_fold_record(run_dir, fold) for fold in range(1, n_folds + 1)]


def test(features, test_path, result_path, data_name=None, seed=None, tsne=False, fold=None, log=print):
    """The test mode: each saved fold's weights on its own test fold, the folds rebuilt from the run's protocol.

    `test_path` is our run folder or the authors' weights folder of corpus `data_name`
    (then `seed` overrides the table's seed). `tsne` draws the paper's Fig. 3 into tsne.png, one panel
    per fold model (its own test fold in its own representation space), the points in tsne.csv;
    `fold` draws fold `fold`'s panel alone (every fold is still scored). The run's normalisation
    is applied to each fold as in training (`normalise.fold_views`).
    """
    run_config, weight_files = run_store.read_saved_run(test_path, corpus=data_name, seed=seed)
    if run_config.n_samples is not None and run_config.n_samples != len(features.x):
        raise RunError(f"{test_path} was trained on {run_config.n_samples} samples of {run_config.data}; the cache has "
                       f"{len(features.x)}: re-extract the same corpus")
    if tuple(features.x.shape[1:]) != (run_config.model.frames, run_config.model.n_mfcc):
        length = (run_config.features or {}).get("mean_signal_length")
        raise RunError(f"the {run_config.data} cache has {features.x.shape[1]} frames per utterance, {test_path} was trained "
                       f"on {run_config.model.frames}: re-extract it" + (f" with --mean_signal_length {length}" if length else ""))
    check_features(features, run_config)
    folds = make_folds(features, run_config.protocol, run_config.split_fold, run_config.seed)
    if len(folds) != len(weight_files):
        raise RunError(f"{test_path} holds {len(weight_files)} fold weights but the protocol gives {len(folds)} folds")
    if fold is not None and not tsne:
        raise RunError(f"--fold {fold} in test mode chooses the t-SNE panel: add --tsne (every fold is scored anyway)")
    if fold is not None and not 1 <= fold <= len(folds):
        raise RunError(f"--fold {fold}: {test_path} holds folds 1 to {len(folds)}")
    classifier = TimnetClassifier.from_model_config(run_config.model)
    calibrations = run_store.fold_calibrations(weight_files)  # each fold's fitted temperature, when it has one
    records, representations = [], {}
    views = fold_views(features, run_config.normalise, folds)
    for k, ((_, test_idx), path, calibration, view) in enumerate(zip(folds, weight_files, calibrations, views), start=1):
        load_legacy_weights(classifier, path)
        x = view.x[test_idx]
        probabilities = np.asarray(classifier.predict(x, batch_size=64, verbose=0))
        records.append(FoldRecord(k, test_idx, features.classes[test_idx], probabilities, calibration=calibration))
        if tsne and fold in (None, k):  # this fold's model, this fold's utterances: one representation space
            representations[k] = np.asarray(classifier.backbone.predict(x, batch_size=64, verbose=0))
    header = run_header(run_config, mode="test", run_dir=test_path)
    result_dir = os.path.join(result_path, f"{os.path.basename(os.path.normpath(test_path))}_test_{time_stamp()}")
    histories = [(fold, run_store.read_fold_record(test_path, fold).history) for fold in range(1, len(weight_files) + 1)
                 if os.path.isfile(run_store.fold_record_path(test_path, fold))]
    summary = write_results(result_dir, records, features.labels, header, histories, log=log)
    if tsne:
        write_tsne(result_dir, records, representations, features.labels,
                   f"{run_config.data} t-SNE of the fused representation, one panel per fold model"
                   f"{' [TEST-SELECTED]' if summary.get('test_selected') else ''}", log=log)
    return summary


def write_tsne(result_dir, records, representations, labels, title, log=print):
    """tsne.csv and tsne.png: each fold in `representations` ({fold: its model's representations of its
    test utterances}) embedded on its own; returns {fold: 5-NN emotion agreement}."""
    from timnet_keras.runs.plots import embed_tsne, neighbour_agreement, plot_tsne_panels, tsne_rows, write_tsne_csv

    rows = []
    for record in records:
        if record.fold in representations:
            points = embed_tsne(representations[record.fold])
            rows += tsne_rows(record.fold, record.test_indices, record.y_true, np.argmax(record.probabilities, axis=1),
                              labels, points)
    write_tsne_csv(os.path.join(result_dir, "tsne.csv"), rows)
    path = os.path.join(result_dir, "tsne.png")
    plot_tsne_panels(rows, labels, path, title)
    agreement = neighbour_agreement(rows)
    mean = np.mean(list(agreement.values())) if agreement else float("nan")
    panels = f"{len(agreement)} panel{'s' if len(agreement) != 1 else ''}"
    log(f"t-SNE: {path} (5-NN emotion agreement {mean:.3f}, mean over {panels}; points in tsne.csv)")
    return agreement
