"""What each command does once its flags are parsed (`cli` parses and dispatches here).

Every expected failure raises a `TimnetError` or calls `_fail`: one `error:`
line and exit status 2, printed by `cli`.
"""
import os
import sys

from timnet_keras.config import canonical_name, default_num_blocks, default_seed, known_corpus_names
from timnet_keras.device import setup_device
from timnet_keras.errors import InputError
from timnet_keras.inputs import check_data_name

EXIT_ERROR = 2
DEFAULT_DATA = "EMODB"  # the authors' main.py default


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_ERROR)


def _data_name(name):
    """The table's name for a known corpus (any case, aliases); an own corpus keeps its name."""
    return canonical_name(name) or name


# --- extract_feature.py

def extract(args, parser):
    """`Code/extract_feature.py` after parsing: the cache of one corpus."""
    from timnet_keras.features.extract import extract_to_cache

    name = _data_name(check_data_name(args.data_name, "--data_name"))
    wav_dir = args.wav_dir or os.path.join("SER_WAV_DATA", name)
    if canonical_name(args.data_name) is None and not os.path.isdir(wav_dir):
        _fail(f"{args.data_name!r} is not a known corpus ({', '.join(known_corpus_names())}) and its folder "
              f"{wav_dir} does not exist; pass --wav_dir PATH")
    length = args.mean_signal_length
    if length not in (None, "auto"):
        from timnet_keras.config import N_FFT

        try:
            length = int(length)
            if length < N_FFT:
                raise ValueError(f"must be at least {N_FFT}")
        except ValueError as error:
            parser.error(f"argument --mean_signal_length: {error} (or 'auto')")
    from timnet_keras.inputs import label_list, speaker_pattern

    labels = label_list(args.labels) if args.labels is not None else None
    if args.speaker_regex is not None:
        speaker_pattern(args.speaker_regex)
    path, features = extract_to_cache(
        name, args.mfcc_path, wav_dir=wav_dir, mean_signal_length=length, workers=args.workers, skip_bad=args.skip_bad,
        labels=list(labels) if labels else None, speaker_regex=args.speaker_regex,
    )
    counts = ", ".join(f"{label} {int(n)}" for label, n in zip(features.labels, features.y.sum(axis=0)))
    print(f"{name}: x {features.x.shape}, {counts}; mean_signal_length {features.settings['mean_signal_length']}")
    print(f"cache: {path}")
    return 0


# --- main.py

def _model_config(args, name, frames, n_mfcc, num_classes):
    from timnet_keras.runs.run_config import ModelConfig

    return ModelConfig(frames=int(frames), n_mfcc=int(n_mfcc), num_classes=int(num_classes),
                       num_blocks=args.dilation_size or default_num_blocks(name), filters=args.filter_size,
                       kernel_size=args.kernel_size, stacks=args.stack_size, dropout_rate=args.dropout,
                       activation=args.activation, variant=args.model)


def _training(args):
    from timnet_keras.runs.run_config import TrainingConfig

    return TrainingConfig(lr=args.lr, beta1=args.beta1, beta2=args.beta2, batch_size=args.batch_size, epoch=args.epoch,
                          precision=args.precision)


def _trainer(args):
    from timnet_keras.training.trainers import resolve_trainer

    if args.run_eagerly or not args.jit_compile:  # no graph, or no XLA: the fold-after-fold trainer
        flag = "--run-eagerly" if args.run_eagerly else "--no-xla"
        if args.trainer == "batched":
            _fail(f"{flag} applies to the sequential trainer (the batched one is one compiled JAX program): "
                  f"drop --trainer batched")
        return "sequential"
    return resolve_trainer(args.trainer)


def _seed(args, name):
    return args.random_seed if args.random_seed is not None else default_seed(name)


def _features(args, name):
    """The corpus' cache; extracted first from --wav_dir, or generated for DEMO, when missing."""
    from timnet_keras.features.extract import cached_or_extracted

    return cached_or_extracted(name, args.mfcc_path, args.wav_dir, args.allow_pickle)


def run_main(args, argv):
    """`Code/main.py` after parsing: the mode's work (`argv` for --resume's check of the flags typed)."""
    from timnet_keras.inputs import check_window

    check_window(args.window, args.hop, args.silence_db)
    if args.mode == "cross":
        return _cross(args)
    name = _data_name(check_data_name(args.data, "--data") if args.data is not None else DEFAULT_DATA)
    if args.mode == "train" and args.resume and args.data is None:
        from timnet_keras.runs.store import read_run_config

        name = read_run_config(args.resume.rstrip("/")).data  # the run knows its corpus
    test_path = None
    if args.mode in ("test", "predict", "export"):
        _check_output(args)
        test_path, name = _chosen_run(args, name)
    from timnet_keras.features.cache import cache_path

    if args.mode != "predict" and canonical_name(name) is None and not os.path.isfile(cache_path(args.mfcc_path, name)) \
            and not args.wav_dir:
        _fail(f"unknown --data {name!r}: not one of {', '.join(known_corpus_names())} "
              f"and no {cache_path(args.mfcc_path, name)}; extract it with Code/extract_feature.py")
    if args.mode == "predict":
        return _predict(args, name, test_path)
    if args.mode == "export":
        return _export(args, name, test_path)
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    from timnet_keras.runs import modes as runs

    features = _features(args, name)
    seed = _seed(args, name)
    if args.mode == "train":
        from timnet_keras.inputs import check_activation

        check_activation(args.activation)
        model_config = _model_config(args, name, *features.x.shape[1:], len(features.labels))
        run_config = runs.new_run_config(features, name, model_config, _training(args), args.protocol, args.select, seed,
                                         args.split_fold, args.jit_compile, _trainer(args), calibrate=args.calibrate,
                                         normalise=args.normalise)
        if args.resume:
            _check_resume_flags(args, argv if argv is not None else sys.argv[1:], run_config)
        runs.train(features, run_config, args.model_path, args.result_path, resume=args.resume, run_eagerly=args.run_eagerly)
    else:
        runs.test(features, test_path, args.result_path, data_name=name, seed=args.random_seed, tsne=args.tsne, fold=args.fold)
    return 0


# Flags a run stores, and where: --resume compares those the user typed with the run's.
RESUME_FLAGS = {
    "--data": "data", "--lr": "training.lr", "--beta1": "training.beta1", "--beta2": "training.beta2",
    "--batch_size": "training.batch_size", "--epoch": "training.epoch", "--dropout": "model.dropout_rate",
    "--random_seed": "seed", "--activation": "model.activation", "--filter_size": "model.filters",
    "--dilation_size": "model.num_blocks", "--kernel_size": "model.kernel_size", "--stack_size": "model.stacks",
    "--split_fold": "split_fold", "--model": "model.variant", "--protocol": "protocol", "--select": "selection",
    "--no-xla": "jit_compile", "--precision": "training.precision", "--calibrate": "calibrate",
    "--normalise": "normalise",
}


def _typed_flags(argv):
    return {arg.split("=")[0] for arg in argv if arg.startswith("--")}


def _check_resume_flags(args, argv, requested):
    """Refuses --resume with flags that differ from the run's stored configuration (unless --force)."""
    from timnet_keras.runs.store import read_run_config

    stored = read_run_config(args.resume.rstrip("/"))
    value = lambda config, path: getattr(getattr(config, path.split(".")[0]), path.split(".")[1]) if "." in path else getattr(config, path)
    changed = [f"{flag} {value(stored, path)} -> {value(requested, path)}" for flag, path in RESUME_FLAGS.items()
               if flag in _typed_flags(argv) and value(stored, path) != value(requested, path)]
    if changed and not args.force:
        _fail(f"--resume {args.resume}: the run was made with other settings ({'; '.join(changed)}); resume without "
              f"those flags, start a new run, or pass --force to resume with the run's own settings")


def _new_path(path):
    """`path`, or `name_2.ext`, `name_3.ext`, ... when it exists: a figure never replaces a file."""
    root, extension = os.path.splitext(path)
    candidate, k = path, 1
    while os.path.lexists(candidate):
        k += 1
        candidate = f"{root}_{k}{extension}"
    return candidate


def _check_output(args):
    """--output of predict (a file in an existing folder) and export (a new folder, or an earlier export of ours)."""
    if args.mode == "export":
        from timnet_keras.model.export import check_export_request

        check_export_request(args.format, args.input)
        if not args.output:
            _fail("export mode needs --output DIR (the folder to create)")
        if os.path.lexists(args.output):
            if not args.overwrite:
                _fail(f"--output {args.output} exists; choose another folder or add --overwrite")
            from timnet_keras.model.export import refuse_to_replace

            refuse_to_replace(args.output)
    elif args.mode == "predict" and args.output:
        if os.path.isdir(args.output):
            _fail(f"--output {args.output} is a folder; name a .csv or .json file to write")
        if os.path.lexists(args.output):
            from timnet_keras.runs.prediction import is_predictions_file

            if not args.overwrite:
                _fail(f"--output {args.output} exists; choose another name or add --overwrite")
            if not is_predictions_file(args.output):
                _fail(f"--overwrite will not replace {args.output}: it is not a predictions file of ours; "
                      f"choose a new name for --output")
        if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
            _fail(f"--output {args.output}: folder {os.path.dirname(os.path.abspath(args.output))} does not exist; "
                  f"create it first")


def _chosen_run(args, name):
    """(folder, corpus) of --test_path, or of the newest finished run of --data; says which, before any work.

    Our run knows its corpus; --data, when given, must agree with it (and with an authors' folder's name).
    """
    from timnet_keras.runs import store as run_store

    test_path = os.path.normpath(args.test_path) if args.test_path else run_store.newest_run(args.model_path, name)
    run_config, files = run_store.read_saved_run(test_path, corpus=name)
    if args.data is not None or run_config.source:
        run_store.check_corpus(test_path, run_config, name)
    if args.fold is not None and not 1 <= args.fold <= len(files):
        raise InputError(f"--fold {args.fold}: {test_path} has folds 1 to {len(files)}")
    print(run_store.describe_run(test_path, run_config, len(files)))
    return test_path, (name if run_config.source else run_config.data)


def _predict(args, name, test_path):
    from timnet_keras.features.corpora import audio_files

    paths = list(args.wav or [])
    if args.wav_dir:
        if not os.path.isdir(args.wav_dir):
            _fail(f"--wav_dir {args.wav_dir}: no such folder")
        paths += sorted(audio_files(args.wav_dir, recursive=True))
    if not paths:
        _fail(f"no audio files under --wav_dir {args.wav_dir}" if args.wav_dir else
              "predict mode needs --wav FILE [FILE ...] or --wav_dir DIR")
    if not any(os.path.isfile(path) for path in paths):  # before the backend starts: a typo costs no start-up
        _fail(f"--wav: no such file: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}")
    _check_enrol(args, test_path)
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    from timnet_keras.runs import prediction

    classifier = _saved_classifier(test_path, name)
    if args.window:
        return _predict_timeline(args, classifier, paths)
    rows, errors = prediction.predict_files(classifier, paths, enrol=args.enrol)
    if rows and rows[0].get("normalisation"):
        print(f"normalisation: {rows[0]['normalisation']}")
    for row in rows:
        print(prediction.format_prediction(row))
        note = prediction.cropped_note(row, classifier.preprocessor)
        if note:
            print(note, file=sys.stderr)
    for error in errors:
        print(f"skipped: {error}", file=sys.stderr)
    if args.output:
        prediction.write_predictions(rows, args.output)
        print(f"predictions: {args.output}")
    if not rows:
        _fail(f"none of the {len(paths)} recordings could be read (see the skipped lines above)")
    return 0


def _check_enrol(args, test_path):
    """--enrol names a folder, and the run normalises by speaker; checked before the backend starts."""
    if args.enrol is None:
        return
    from timnet_keras.runs import store as run_store

    normalise = run_store.read_run_config(test_path).normalise if run_store.is_run_dir(test_path) else "none"
    if normalise != "speaker":
        _fail(f"--enrol gives a speaker's statistics, which only a run trained with --normalise speaker uses; "
              f"{test_path}'s normalisation is {normalise}: drop --enrol")
    if not os.path.isdir(args.enrol):
        _fail(f"--enrol {args.enrol}: no such folder (name a folder of the speaker's recordings)")


def _saved_classifier(test_path, name, fold=None):
    """The classifier of a run of ours or an authors' folder of corpus `name`."""
    from timnet_keras.runs import store as run_store
    from timnet_keras.model.classifier import TimnetClassifier

    if run_store.is_run_dir(test_path):
        return TimnetClassifier.from_run(test_path, fold=fold)
    return TimnetClassifier.from_weights(test_path, corpus=name, fold=fold)


def _predict_timeline(args, classifier, paths):
    from timnet_keras.io import time_stamp, write_text_atomic
    from timnet_keras.features.preprocessor import BadAudioError
    from timnet_keras.runs.timeline import SILENCE_DB, plot_timeline, predict_timeline, timeline_text

    silence = SILENCE_DB if args.silence_db is None else args.silence_db
    statistics = None
    if classifier.preprocessor.normalise == "speaker":  # one speaker's statistics for every window of every file
        from timnet_keras.runs.prediction import enrolment_statistics
        from timnet_keras.runs.timeline import timeline_statistics

        statistics, errors = (enrolment_statistics(classifier.preprocessor, args.enrol) if args.enrol else
                              timeline_statistics(classifier.preprocessor, paths, args.window, args.hop))
        for error in errors if args.enrol else ():
            print(f"skipped: enrolment: {error}", file=sys.stderr)
    rows, failed = [], 0
    plot_dir = os.path.dirname(os.path.abspath(args.output)) if args.output else os.path.join(args.result_path, f"timeline_{time_stamp()}")
    for path in paths:
        try:
            windows = predict_timeline(classifier, path, args.window, args.hop, silence, statistics=statistics)
        except BadAudioError as error:
            print(f"skipped: {error}", file=sys.stderr)
            failed += 1
            continue
        rows += windows
        track = " ".join(f"{w.start:.0f}-{w.end:.0f}s {w.label}" for w in windows)
        print(f"{path}: {len(windows)} windows: {track}")
        if args.plot:
            os.makedirs(plot_dir, exist_ok=True)
            stem = os.path.splitext(os.path.basename(path))[0]
            png = _new_path(os.path.join(plot_dir, f"{stem}_timeline.png"))  # never over a file of yours, or another recording's
            plot_timeline(windows, list(classifier.labels), png)
            print(f"timeline: {png}")
    if rows and rows[0].normalisation:
        print(f"normalisation: {rows[0].normalisation}")
    if args.output:
        write_text_atomic(args.output, timeline_text(rows, json_format=args.output.lower().endswith(".json")))
        print(f"predictions: {args.output}")
    if not rows:
        _fail(f"none of the {len(paths)} recordings could be read (see the skipped lines above)")
    return 0


def _export(args, name, test_path):
    from timnet_keras.runs import store as run_store
    from timnet_keras.model.export import check_exportable

    if run_store.is_run_dir(test_path):  # before the backend starts
        check_exportable(run_store.read_run_config(test_path).normalise)
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    classifier = _saved_classifier(test_path, name, fold=args.fold)
    manifest = classifier.export_bundle(args.output, args.format, overwrite=args.overwrite,
                                        source=os.path.abspath(test_path), fold=args.fold, input=args.input)
    what = f"fold {args.fold}" if args.fold else f"{manifest.ensemble_size} folds averaged"
    rate = f" at {manifest.preprocessing['sample_rate']} Hz" if manifest.input == "audio" else ""
    print(f"exported {what} as {args.format}: {os.path.join(args.output, manifest.model_file)} "
          f"(input {manifest.input_name} {manifest.input_shape} float32{rate}, labels {', '.join(manifest.labels)})")
    return 0


def _cross(args):
    if not args.source or (args.source.lower() != "all" and not args.target):
        _fail("cross mode needs --source CORPUS --target CORPUS, or --source all")
    if args.target and _data_name(args.source) == _data_name(args.target):
        _fail(f"--source and --target are both {_data_name(args.source)}: a cross-corpus result needs two corpora "
              f"(for one corpus, --mode train gives its cross-validated figure)")
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    from timnet_keras.features.cache import cache_path, load_features
    from timnet_keras.config import DEFAULT_SEED
    from timnet_keras.paper.cross_corpus import cross_corpus, cross_corpus_pairs, write_cross_results

    pairs = cross_corpus_pairs(args.source, args.target or "")
    needed = sorted({n for pair in pairs for n in pair})
    missing = [n for n in needed if not os.path.isfile(cache_path(args.mfcc_path, n))]
    if missing:
        _fail(f"no features for {', '.join(missing)} under {args.mfcc_path}; extract them with Code/extract_feature.py")
    cache = {n: load_features(args.mfcc_path, n) for n in needed}
    seeds = [(args.random_seed if args.random_seed is not None else DEFAULT_SEED) + r for r in range(args.runs)]
    results = {}
    for source, target in pairs:
        length = args.mean_signal_length or cache[source].settings.get("mean_signal_length")
        print(f"{source} -> {target}")
        config = _model_config(args, source, *cache[source].x.shape[1:], len(cache[source].labels))
        results[(source, target)] = cross_corpus(cache[source], cache[target], config, _training(args), seeds, length,
                                                 args.jit_compile)
    out, table = write_cross_results(args.result_path, args.source, args.target, results, args.epoch, seeds)
    print(table)
    print(f"results: {out}")
    return 0


# --- reproduce.py ---------------------------------------------------------------------------

# --- reproduce.py

def reproduce_grid(args):
    """`Code/reproduce.py` after parsing: the grid's report, dry run or units."""
    from timnet_keras.paper.grid import GridSpec, expand, parse_normalisations, parse_protocols, parse_tables
    from timnet_keras.paper.registry import finished_units, pending_units

    corpora = tuple(_data_name(name.strip()) for name in args.corpora.split(",") if name.strip())
    if not corpora:
        _fail("--corpora: name at least one corpus")
    from timnet_keras.features.cache import cache_path

    unknown = [c for c in corpora if canonical_name(c) is None and not os.path.isfile(cache_path(args.mfcc_path, c))]
    if unknown:
        raise InputError(f"--corpora: {', '.join(unknown)} is neither one of {', '.join(known_corpus_names())} nor an "
                         f"extracted cache under {args.mfcc_path}")
    if os.path.exists(args.registry) and not os.path.isdir(args.registry):
        raise InputError(f"--registry {args.registry} is a file; name a folder (default: reproduction)")
    if args.executor == "ray" and args.trainer == "batched":
        raise InputError("--executor ray trains one unit per worker; --trainer batched trains a cell's units together "
                         "in one process: use --executor local with it, or --trainer sequential")
    spec = GridSpec(parse_tables(args.table), corpora, args.seeds, args.epoch, args.split_fold, args.precision,
                    parse_protocols(args.protocol), parse_normalisations(args.normalise))
    if args.report_only:
        from timnet_keras.paper.reproduction import write_report

        print(f"report: {write_report(args.registry, args.report)}")
        return 0
    if args.dry_run:  # pending: trained, its record still in a stopped driver's journal (written at the next start)
        damaged = []
        done = finished_units(args.registry, damaged)
        unusable, pending = dict(damaged), pending_units(args.registry)
        for unit in expand(spec):
            status = "done" if unit.key in done else "pending" if unit.key in pending else \
                "damaged" if unit.key in unusable else "todo"
            shared = f"  (one training: {unit.training_key})" if unit.kind == "cross" else ""
            print(f"{status}  {unit.key}{shared}")
        return 0
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    from timnet_keras.paper.reproduction import reproduce

    # Ray: one unit per worker, fold after fold (an explicit --trainer batched was refused above)
    trainer = "sequential" if args.executor == "ray" else _trainer(args)
    options = dict(jit_compile=args.jit_compile, run_eagerly=args.run_eagerly, trainer=trainer)
    if args.executor == "ray":
        options.update(address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                       gpus_per_worker=args.gpus_per_worker)
    reproduce(spec, args.registry, args.mfcc_path, args.executor, args.corpora_dir, args.report, **options)
    return 0


# --- build_preset.py

def build_preset(args):
    """`Code/build_preset.py`: a run folder packed as a preset, with its model card and provenance."""
    from timnet_keras.features.cache import cache_path, load_feature_cache
    from timnet_keras.runs import presets, store

    run_config = store.read_run_config(args.run.rstrip("/"))
    name = _data_name(args.data or run_config.data)
    path = cache_path(args.mfcc_path, name)
    features = load_feature_cache(path) if os.path.isfile(path) else None
    target = presets.build_preset(args.run.rstrip("/"), args.name, args.presets_dir or presets.PRESETS_DIR, features,
                                  overwrite=args.overwrite)
    figures = presets.read_provenance(args.name, os.path.dirname(target))["figures"]
    print(f"preset: {target} (WAR {figures['war']['mean']:.2f} %, UAR {figures['uar']['mean']:.2f} %; "
          f"model_card.md beside it)")
    return 0
