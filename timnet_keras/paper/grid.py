"""The reproduction grid: the paper's tables as units of work, and how one unit is trained.

Table 1 is one 10-fold cell per corpus and seed; Table 3 adds one cell per
ablation; Table 2 is one unit per ordered pair of corpora and run, and one
training per source and run, scored on each target (`trainings`); table
B is the baselines (`baselines.py`): one cell per baseline, corpus and seed,
each fold scikit-learn's in seconds. Every cv cell comes in the protocols
asked for (`GridSpec.protocols`): `kfold`, the paper's 10 folds, and
`speaker`, leave one speaker out, whose folds are the corpus' speakers in
sorted order (`folds.make_folds(features, "speaker", ...)`, as many folds as
speakers, `SPEAKER_COUNTS`). Cross-corpus units have no protocol: the target
corpus' speakers are new anyway. TIM-Net's cv cells (Tables 1
and 3) also come in the feature normalisations asked for (`GridSpec.normalisations`,
`--normalise none,utterance,speaker`; `normalise.py`): a normalised cell is keyed
`...-norm-<option>`, and the raw-MFCC cells keep their keys. The baselines and the
cross-corpus units stay on raw MFCCs. The
first seed of a cell is the corpus table's; further seeds count up from it
(cross-corpus runs count up from DEFAULT_SEED, as `--mode cross` does). Every
unit is trained by the same code as `--mode train` and `--mode cross`, in the
honest setting (each fold's last epoch).
"""
import time
from dataclasses import dataclass

import numpy as np

from timnet_keras.errors import TimnetError
from timnet_keras.config import CORPORA, DEFAULT_SEED, NORMALISATIONS, TRAINING_DEFAULTS, default_num_blocks, default_seed
from timnet_keras.paper.baselines import BASELINE_EPOCHS
from timnet_keras.paper.registry import Unit

TABLES = ("1", "3", "B", "2")  # the order the tables are filled in: Table 1 first, the cross-corpus runs last
CV_FOLDS = TRAINING_DEFAULTS["split_fold"]
PROTOCOLS = ("kfold", "speaker")
# Speakers per corpus, as the corpus readers name them (corpora.py; DEMO: demo.SPEAKERS): a speaker cell has a fold
# for each. A corpus whose features hold another number is refused when its unit runs.
SPEAKER_COUNTS = {"CASIA": 4, "EMODB": 10, "EMOVO": 6, "IEMOCAP": 10, "RAVDE": 24, "SAVEE": 4, "DEMO": 6}


class GridError(TimnetError):
    """A grid that cannot be run as asked; the message says what to do."""


@dataclass(frozen=True)
class GridSpec:
    """What `reproduce` was asked for: tables, corpora, seeds (per cell) and epochs."""

    tables: tuple
    corpora: tuple
    seeds: int = 1
    epochs: int = TRAINING_DEFAULTS["epoch"]
    n_folds: int = CV_FOLDS
    precision: str = "float32"  # "bfloat16": every cell again in mixed precision, beside the float32 ones
    protocols: tuple = ("kfold",)  # of the cv cells: ("kfold",), ("speaker",) or both
    normalisations: tuple = ("none",)  # of TIM-Net's cv cells: any of none, utterance, speaker (`normalise.py`)


def parse_tables(text):
    """'1', '3', '2', 'B' (the baselines), '1,3' or 'all' -> the tables in fill order.

    Example:
        >>> parse_tables("all"), parse_tables("1,b")
        (('1', '3', 'B', '2'), ('1', 'B'))
    """
    wanted = TABLES if text.strip().lower() == "all" else tuple(t.strip().upper() for t in text.split(",") if t.strip())
    wanted = tuple("B" if t == "BASELINES" else t for t in wanted)
    unknown = [t for t in wanted if t not in TABLES]
    if unknown or not wanted:
        raise GridError(f"--table {text!r}: choose 1, 2, 3, B (the baselines), a comma list of them, or all")
    return tuple(t for t in TABLES if t in wanted)


def parse_protocols(text):
    """--protocol kfold|speaker|both -> the protocols of the cv cells.

    Example:
        >>> parse_protocols("both")
        ('kfold', 'speaker')
    """
    wanted = PROTOCOLS if text == "both" else (text,)
    if any(p not in PROTOCOLS for p in wanted):
        raise GridError(f"--protocol {text!r}: choose kfold, speaker or both")
    return wanted


def parse_normalisations(text):
    """--normalise none,utterance,speaker (a comma list) -> the normalisations of TIM-Net's cv cells, in table order.

    Example:
        >>> parse_normalisations("speaker,utterance"), parse_normalisations("none")
        (('utterance', 'speaker'), ('none',))
    """
    wanted = {t.strip().lower() for t in text.split(",") if t.strip()}
    unknown = sorted(wanted - set(NORMALISATIONS))
    if unknown or not wanted:
        raise GridError(f"--normalise {text!r}: choose a comma list of {', '.join(NORMALISATIONS)}")
    return tuple(n for n in NORMALISATIONS if n in wanted)


def speaker_count(corpus):
    """The number of speakers, hence of folds, of a corpus' leave-one-speaker-out cells."""
    if corpus not in SPEAKER_COUNTS:
        raise GridError(f"--protocol speaker: the number of speakers of {corpus} is not known (known: "
                        f"{', '.join(sorted(SPEAKER_COUNTS))}); use --protocol kfold for it")
    return SPEAKER_COUNTS[corpus]


def _cv_cell(spec, corpus, variant, seed, epochs, precision, normalisations=("none",)):
    """The units of one cv cell in every protocol and normalisation asked for."""
    units = []
    for normalise in normalisations:
        for protocol in spec.protocols:
            n_folds = spec.n_folds if protocol == "kfold" else speaker_count(corpus)
            units += [Unit("cv", corpus, variant, seed, epochs, fold, n_folds, precision=precision, protocol=protocol,
                           normalise=normalise)
                      for fold in range(1, n_folds + 1)]
    return units


def expand(spec):
    """Every unit of the grid in the order it is run: seed by seed, Table 1, then 3, then 2, corpus by corpus.

    Example:
        >>> units = expand(GridSpec(tables=("1", "3"), corpora=("EMODB",), seeds=2, epochs=500))
        >>> len(units), units[0].key, units[-1].key
        (100, 'cv/EMODB/timnet/seed46-e500/fold01', 'cv/EMODB/no_df/seed47-e500/fold10')
    """
    from timnet_keras.paper.baselines import BASELINES
    from timnet_keras.paper.figures import ABLATIONS

    units = []
    for r in range(spec.seeds):
        for table in spec.tables:
            if table in ("1", "3"):
                variants = ("timnet",) if table == "1" else ABLATIONS
                for corpus in spec.corpora:
                    for variant in variants:
                        units += _cv_cell(spec, corpus, variant, default_seed(corpus) + r, spec.epochs, spec.precision,
                                          spec.normalisations)
            elif table == "B":  # no epochs, no precision: the same folds as TIM-Net's cells of this seed
                for corpus in spec.corpora:
                    for variant in BASELINES:
                        units += _cv_cell(spec, corpus, variant, default_seed(corpus) + r, BASELINE_EPOCHS, "float32")
            else:
                units += [Unit("cross", source, "timnet", DEFAULT_SEED + r, spec.epochs, target=target,
                               precision=spec.precision)
                          for source in spec.corpora for target in spec.corpora if source != target]
    return units


def trainings(units):
    """The units grouped by the training that produces their records (`Unit.training_key`), in order.

    The cross units of one source run form one group: its model is the same whatever the target (the
    source's length, the five shared emotions, the run's seed), so it is trained once. Every other unit
    is a group of its own.

    Example:
        >>> groups = trainings(expand(GridSpec(("2",), ("CASIA", "EMODB", "EMOVO"))))
        >>> [[u.target for u in group] for group in groups]
        [['EMODB', 'EMOVO'], ['CASIA', 'EMOVO'], ['CASIA', 'EMODB']]
    """
    groups = {}
    for unit in units:
        groups.setdefault(unit.training_key, []).append(unit)
    return list(groups.values())


class UnitRunner:
    """Trains units one after another, keeping one compiled Trainer per model shape and training settings.

    A cv unit is a fold job (`plan.fold_job`) trained by the Trainer `--mode train` uses
    (`trainers.choose_trainer`), so its record is the one that mode writes for the same fold.

    Args:
        jit_compile: XLA for the train step, as `--mode train` (`--no-xla` turns it off).
        run_eagerly: no graph at all (tiny grids in tests, debugging).
        node_id: the Ray node this runner lives on, for the records.
    """

    def __init__(self, jit_compile=True, run_eagerly=False, node_id=""):
        self.jit_compile, self.run_eagerly, self.node_id = jit_compile, run_eagerly, node_id
        self._trainers = {}
        self._shared_views = {}  # (corpus features, normalisation) -> the fold-free normalised features, made once

    def _view(self, unit, source, train, test):
        """The features unit's fold trains and tests on: its normalisation of `source` (`normalise.fold_views`)."""
        from timnet_keras.features.normalise import check_raw_cache, check_speakers, fold_independent, fold_view, normalised_features

        if unit.normalise == "none":
            return source
        check_raw_cache(source, unit.normalise, f"the {unit.corpus} feature cache")
        check_speakers(source, unit.normalise)
        if unit.normalise == "speaker" and not fold_independent(source, train, test):
            return fold_view(source, unit.normalise, train, test)  # 10-fold: the training part's speaker statistics
        key = (id(source), unit.normalise)
        held = self._shared_views.get(key)
        if held is None or held[0] is not source:
            held = self._shared_views[key] = (source, normalised_features(source, unit.normalise))
        return held[1]

    def _trainer(self, choice, model_config, training, seed):
        from timnet_keras.training.trainers import choose_trainer

        key = (choice, model_config, training)
        if key not in self._trainers:
            self._trainers[key] = choose_trainer(choice, model_config, training, seed, "last", self.jit_compile,
                                                 self.run_eagerly)
        return self._trainers[key]

    def run(self, unit, source, target=None):
        """Trains `unit` on FeatureSet `source` (and scores `target` for a cross unit); returns its FoldRecord."""
        from timnet_keras.paper.baselines import is_baseline

        if unit.kind == "cross":
            return self.run_cross([unit], source, {unit.target: target})[0]
        if is_baseline(unit.variant):
            return self._run_baseline(unit, source)
        return self.run_units([unit], source)[0]

    def run_training(self, units, features):
        """The records of one group of `trainings`, in the units' order; `features` maps corpus names to FeatureSets."""
        if units[0].kind == "cross":
            return self.run_cross(units, features[units[0].corpus], {u.target: features[u.target] for u in units})
        (unit,) = units
        return [self.run(unit, features[unit.corpus])]

    def run_cross(self, units, source, targets):
        """Cross units of one source run: the source trained once, on all of it, and scored on each target.

        `targets` maps target names to FeatureSets. A target sharing other emotions with the source than
        the rest (not so among the paper's corpora, which all hold the five) needs another source subset,
        hence a training of its own: one training per set of shared emotions. Each record gets its share
        of the training's time and names every target the training was scored on.
        """
        from timnet_keras.paper.cross_corpus import corpus_pair, train_on_targets
        from timnet_keras.training.record import FoldRecord

        if len({u.training_key for u in units}) != 1:
            raise GridError(f"{units[0].key} and the other units given together are not of one source run")
        training, model_config = self._settings(units[0], source)
        length = source.settings.get("mean_signal_length") or CORPORA[units[0].corpus].mean_signal_length
        by_emotions = {}
        for unit in units:  # the target at the source's length: the source model does not depend on the target
            pair = corpus_pair(source, targets[unit.target], model_config, length, unit.corpus, unit.target)
            by_emotions.setdefault(tuple(pair.labels), []).append((unit, pair))
        records = {}
        for members in by_emotions.values():
            start = time.time()
            pairs = [pair for _, pair in members]
            trainer = self._trainer("sequential", pairs[0].model_config, training, units[0].seed)
            trainer.seed = units[0].seed  # a cross run trains from seed + 0, as --mode cross
            results = train_on_targets(trainer, pairs, desc=units[0].training_key)
            seconds = (time.time() - start) / len(members)  # trained once for all: each record gets its share
            for (unit, pair), (history, probabilities) in zip(members, results):
                y_true = np.argmax(pair.y_target, axis=1)
                test_indices = np.arange(len(y_true))  # into the target's shared-emotion subset, in cache order
                record = FoldRecord(0, test_indices, y_true, probabilities, history, training.epoch)
                record = self._record(unit, record, pair.labels, training, pair.model_config, seconds, source)
                records[unit] = record.replace(training={**record.training, "targets": [u.target for u, _ in members]})
        return [records[unit] for unit in units]

    def _run_baseline(self, unit, source):
        """A baseline's fold (`baselines.py`): the same FoldRecord as TIM-Net's, with its classifier's settings."""
        from timnet_keras.paper.baselines import run_baseline_fold
        from timnet_keras.io import time_stamp, versions
        from timnet_keras.training.record import machine_description
        from timnet_keras.paper.registry import unit_record

        start = time.time()
        train, test = unit_folds(unit, source)
        probabilities, training, model = run_baseline_fold(unit, source, train, test)
        return unit_record(unit, source.labels, test, source.classes[test], probabilities, training=training, model=model,
                           seconds=round(time.time() - start, 1), backend="scikit-learn", versions=versions(),
                           machine=machine_description(self.node_id), finished=time_stamp(),
                           held_out_speakers=held_out_speakers(unit, source, test))

    def run_units(self, units, source, trainer="sequential"):
        """cv units of one corpus, variant, epochs and precision (any seeds, folds and normalisations).

        Trained by Trainer `trainer`: "batched" as one JAX program, "sequential" one after another; each
        fold on its normalisation of the features (`_view`). Returns their FoldRecords.
        """
        from timnet_keras.training.plan import fold_job

        training, model_config = self._settings(units[0], source)
        start = time.time()
        splits = [unit_folds(unit, source) for unit in units]
        views = [self._view(unit, source, train, test) for unit, (train, test) in zip(units, splits)]
        jobs = [fold_job(source, train, test, unit.fold, unit.seed, "last") for unit, (train, test) in zip(units, splits)]
        desc = units[0].key if len(units) == 1 else f"{units[0].cell} and {len(units) - 1} more units"
        records = self._trainer(trainer, model_config, training, units[0].seed).train(views, jobs, desc=desc)
        share = (time.time() - start) / len(units) if trainer == "batched" else None  # trained together: each its share
        return [self._record(unit, record, source.labels, training, model_config,
                             share if share is not None else record.seconds, source)
                for unit, record in zip(units, records)]

    @staticmethod
    def _settings(unit, source):
        from timnet_keras.runs.run_config import ModelConfig, TrainingConfig

        model_config = ModelConfig(frames=int(source.x.shape[1]), n_mfcc=int(source.x.shape[2]),
                                   num_classes=len(source.labels), num_blocks=default_num_blocks(unit.corpus),
                                   variant=unit.variant)
        return TrainingConfig(epoch=unit.epochs, precision=unit.precision), model_config

    def _record(self, unit, record, labels, training, model_config, seconds, source):
        from timnet_keras.training.record import with_provenance

        protocol = unit.protocol if unit.kind == "cv" else "cross"
        record = with_provenance(record, training, model_config, "last", protocol, self.node_id, seconds, unit.normalise)
        return record.replace(unit=unit, labels=tuple(labels),
                              held_out_speakers=held_out_speakers(unit, source, record.test_indices))


def unit_folds(unit, source):
    """(train, test) indices of a cv unit: fold `unit.fold` of its protocol over FeatureSet `source`.

    kfold: the authors' shuffled KFold with the unit's seed. speaker: leave one speaker out, the speakers in sorted
    order; a corpus with another number of speakers than the unit's folds is refused, never scored on other folds.
    """
    from timnet_keras.training.folds import make_folds

    if unit.protocol == "speaker":
        found = len(set(source.speakers))
        if found != unit.n_folds:
            raise GridError(f"{unit.key}: {unit.corpus}'s features hold {found} speakers, the cell expects "
                            f"{unit.n_folds} (grid.SPEAKER_COUNTS); re-extract the corpus or correct the count")
    return make_folds(source, unit.protocol, unit.n_folds, unit.seed)[unit.fold - 1]


def held_out_speakers(unit, source, test):
    """The speaker(s) a speaker unit holds out (its test part's); () for the other units."""
    if unit.kind != "cv" or unit.protocol != "speaker":
        return ()
    return tuple(sorted({str(source.speakers[i]) for i in np.asarray(test, dtype=int)}))
