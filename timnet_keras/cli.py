"""The command lines (`Code/main.py`, `Code/extract_feature.py`, `Code/summarize.py`; the authors' flags).

Parsing and dispatch only: flags become typed configs, and the work is done
by the library modules. `MFCC/`, `Models/`, `Results/` and `SER_WAV_DATA/`
are relative to the working directory, never to the installed package.
Every expected failure ends in a one-line `error: ...` and exit status 2.
"""
import argparse
import os
import sys

from .config import (DEFAULT_NORMALISE, EXPORT_INPUTS, NORMALISATIONS, TRAINING_DEFAULTS, canonical_name,
                     default_num_blocks, default_seed, known_corpus_names)
from .device import setup_device
from .errors import InputError, TimnetError
from .inputs import check_data_name

EXIT_ERROR = 2
DEFAULT_DATA = "EMODB"  # the authors' main.py default


# --- flag types: a bad value is one `error:` line naming the flag, exit status 2 --------------

class Parser(argparse.ArgumentParser):
    """argparse with one `error:` line instead of the usage block: the message names the flag; --help shows the rest."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # an abbreviation (--ep) would slip past --resume's comparison
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def at_least(low, kind=int):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    return parse


def within(low, high, include_low=True):
    """A float in [low, high) (or (low, high) when not include_low)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not ((value >= low if include_low else value > low) and value < high):
            raise argparse.ArgumentTypeError(f"must be in {'[' if include_low else '('}{low}, {high}), got {text}")
        return value

    return parse


positive = within(0, float("inf"), include_low=False)
MAX_SEED = 2**31 - 1 - 10_000  # fold k draws from seed + k, and NumPy takes seeds below 2**32


def seed_value(text):
    value = at_least(0)(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {text}")
    return value


# Flags that mean something in some modes only: given in another mode they would be ignored, so they are refused.
MODE_FLAGS = {
    "train": ("lr", "beta1", "beta2", "batch_size", "epoch", "dropout", "activation", "filter_size", "dilation_size",
              "kernel_size", "stack_size", "split_fold", "model", "protocol", "select", "calibrate", "resume", "force",
              "jit_compile", "run_eagerly", "trainer", "precision", "random_seed", "normalise"),
    "cross": ("lr", "beta1", "beta2", "batch_size", "epoch", "dropout", "activation", "filter_size", "dilation_size",
              "kernel_size", "stack_size", "model", "precision", "jit_compile", "source", "target", "runs",
              "mean_signal_length", "random_seed"),
    "test": ("test_path", "tsne", "fold", "random_seed"),
    "predict": ("test_path", "wav", "output", "window", "hop", "silence_db", "plot", "overwrite", "enrol"),
    "export": ("test_path", "output", "format", "fold", "overwrite", "input"),
}
FLAG_NAMES = {"jit_compile": "--no-xla", "run_eagerly": "--run-eagerly", "allow_pickle": "--allow-pickle"}


def check_mode_flags(parser, args):
    """Refuses a flag given in a mode that would ignore it (--tsne in predict mode, --epoch in export mode, ...)."""
    owned = {flag for flags in MODE_FLAGS.values() for flag in flags}
    for dest in sorted(owned - set(MODE_FLAGS[args.mode])):
        if getattr(args, dest) != parser.get_default(dest):
            modes = [mode for mode, flags in MODE_FLAGS.items() if dest in flags]
            name = FLAG_NAMES.get(dest, f"--{dest}")
            parser.error(f"{name} applies to --mode {' or '.join(modes)}, not --mode {args.mode}; drop it")
    if args.mode == "predict" and args.window is None:
        for dest in ("hop", "plot"):
            if getattr(args, dest) != parser.get_default(dest):
                parser.error(f"--{dest} applies to windows: add --window SECONDS")
    if args.output is not None and not args.output.strip():
        parser.error("--output is empty: name a file (predict) or a folder (export)")


def _error_line(error):
    """One line for an expected failure: our own errors say what to do; an OS error names its path."""
    if isinstance(error, OSError) and not isinstance(error, TimnetError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    return str(error)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finished files kept, temporaries removed."""


def _terminate(signum, frame):
    raise Terminated()


def _run(function, argv):
    import signal

    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        return function(argv)
    except KeyboardInterrupt as interrupt:
        resume = getattr(interrupt, "resume_command", None)
        print("interrupted: finished files are kept" + (f"; continue with: {resume}" if resume else ""), file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) else 130
    except (TimnetError, OSError) as error:  # expected failures (disk full included) become one line
        print(f"error: {_error_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_ERROR)


def _data_name(name):
    """The table's name for a known corpus (any case, aliases); an own corpus keeps its name."""
    return canonical_name(name) or name


# --- extract_feature.py ---------------------------------------------------------------------

def extract_parser():
    p = Parser(description="Extract TIM-Net's MFCC features of a corpus into MFCC/<DATA>.npz")
    p.add_argument("--data_name", required=True, help=f"{', '.join(known_corpus_names())}, or any name for a folder-per-class corpus")
    p.add_argument("--wav_dir", help="the corpus' audio (default: SER_WAV_DATA/<DATA>)")
    p.add_argument("--mean_signal_length", default=None, help="samples to pad/crop to, or 'auto' (default: the corpus table; auto for own corpora)")
    p.add_argument("--workers", type=at_least(1), default=None, help="processes (default: all cores)")
    p.add_argument("--mfcc_path", default="MFCC", help="cache folder (default: MFCC/)")
    p.add_argument("--labels", help="own corpora: comma-separated class folder names, in label order")
    p.add_argument("--speaker_regex", help="own corpora: regex whose first group in a file name is the speaker")
    p.add_argument("--skip-bad", "--skip_bad", dest="skip_bad", action="store_true", help="skip unreadable, empty or too short files and report them")
    return p


def extract_main(argv=None):
    return _run(_extract, argv)


def _extract(argv):
    args = extract_parser().parse_args(argv)
    from .extract import extract_to_cache

    name = _data_name(check_data_name(args.data_name, "--data_name"))
    wav_dir = args.wav_dir or os.path.join("SER_WAV_DATA", name)
    if canonical_name(args.data_name) is None and not os.path.isdir(wav_dir):
        _fail(f"{args.data_name!r} is not a known corpus ({', '.join(known_corpus_names())}) and its folder "
              f"{wav_dir} does not exist; pass --wav_dir PATH")
    length = args.mean_signal_length
    if length not in (None, "auto"):
        from .config import N_FFT

        try:
            length = at_least(N_FFT)(length)
        except argparse.ArgumentTypeError as error:
            extract_parser().error(f"argument --mean_signal_length: {error} (or 'auto')")
    from .inputs import label_list, speaker_pattern

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


# --- main.py --------------------------------------------------------------------------------

def main_parser():
    d = TRAINING_DEFAULTS
    p = Parser(description="TIM-Net: train (k-fold CV), test saved fold weights, predict, cross-corpus")
    p.add_argument("--mode", default="train", choices=("train", "test", "predict", "cross", "export"))
    p.add_argument("--data", default=None, help=f"corpus: {', '.join(known_corpus_names())} or an own extracted corpus "
                   f"(default: the run's own corpus, else {DEFAULT_DATA})")
    p.add_argument("--model_path", default="Models", help="run folders (default: ./Models)")
    p.add_argument("--result_path", default="Results", help="result folders (default: ./Results)")
    p.add_argument("--test_path", default=None, help="run folder or authors' weights folder (default: newest run of --data)")
    p.add_argument("--mfcc_path", default="MFCC", help="feature caches (default: ./MFCC)")
    p.add_argument("--wav_dir", default=None, help="extract the corpus first if its cache is missing; predict: a folder of audio")
    p.add_argument("--allow-pickle", "--allow_pickle", dest="allow_pickle", action="store_true", help="read an authors' pickled MFCC/<DATA>.npy")
    p.add_argument("--lr", type=positive, default=d["lr"])
    p.add_argument("--beta1", type=within(0, 1), default=d["beta1"])
    p.add_argument("--beta2", type=within(0, 1), default=d["beta2"])
    p.add_argument("--batch_size", type=at_least(1), default=d["batch_size"])
    p.add_argument("--epoch", type=at_least(1), default=d["epoch"])
    p.add_argument("--dropout", type=within(0, 1), default=d["dropout"])
    p.add_argument("--random_seed", type=seed_value, default=None, help="default: the corpus' seed of the released weights (EMODB 46)")
    p.add_argument("--activation", default=d["activation"])
    p.add_argument("--filter_size", type=at_least(1), default=d["filter_size"])
    p.add_argument("--dilation_size", type=at_least(1), default=None, help="blocks per direction (default: the corpus table's, 8; IEMOCAP 10)")
    p.add_argument("--kernel_size", type=at_least(1), default=d["kernel_size"])
    p.add_argument("--stack_size", type=at_least(1), default=d["stack_size"])
    p.add_argument("--split_fold", type=at_least(2), default=d["split_fold"])
    p.add_argument("--gpu", default=None, help="CUDA device index (sets CUDA_VISIBLE_DEVICES; left alone when not given)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                   help="Keras backend (default: KERAS_BACKEND, else tensorflow); jax trains in half the memory, more slowly on CPU")
    p.add_argument("--model", default="timnet", choices=("timnet", "tcn", "no_bd", "no_ms", "no_df"),
                   help="timnet (default) or an ablation of the paper's Table 3")
    p.add_argument("--protocol", default="kfold", choices=("kfold", "stratified", "speaker"))
    p.add_argument("--select", default="last", choices=("last", "best-val", "best-test"),
                   help="weights to keep per fold; best-test selects on the test fold and is labelled test-selected")
    p.add_argument("--calibrate", action="store_true",
                   help="hold a stratified tenth of each training part out of training (best-val: its validation tenth) "
                        "to fit the fold's temperature and abstain thresholds on; off by default: the paper trains on all rows")
    p.add_argument("--normalise", choices=tuple(NORMALISATIONS), default=DEFAULT_NORMALISE,
                   help="train mode: feature normalisation, stored with the run and applied by its test, predict and "
                        "export. none: the authors' raw MFCCs (default); utterance: each recording standardised over "
                        "its own real frames; speaker: each speaker over its recordings (a test speaker absent from "
                        "training over its own test recordings, unlabelled: transductive enrolment)")
    p.add_argument("--resume", default=None, help="continue the run folder RUN_DIR from its first unfinished fold")
    p.add_argument("--force", action="store_true", help="--resume even though the flags given differ from the run's")
    p.add_argument("--no-xla", dest="jit_compile", action="store_false", help="train without XLA: slower, the same training up to round-off (README)")
    p.add_argument("--run-eagerly", "--run_eagerly", dest="run_eagerly", action="store_true",
                   help="train without any graph: slow steps, no tracing; for debugging your own layers (sequential trainer)")
    p.add_argument("--trainer", choices=("auto", "batched", "sequential"), default="auto",
                   help="batched: all folds as one compiled JAX program (same numbers; the GPU default); "
                        "sequential: fold after fold (the CPU and TensorFlow default)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="bfloat16: mixed precision (bfloat16 compute, float32 weights); opt-in, its own accuracy")
    p.add_argument("--verbose", action="store_true", help="show the backend's own start-up logging")
    p.add_argument("--tsne", action="store_true", help="test mode: t-SNE plot of the fused representation")
    p.add_argument("--wav", nargs="+", help="predict mode: audio files")
    p.add_argument("--enrol", default=None, help="predict mode, a run trained with --normalise speaker: a folder of the "
                   "speaker's recordings whose statistics normalise the predicted ones (default: the recordings given "
                   "together, taken to be one speaker)")
    p.add_argument("--output", help="predict mode: write predictions to a .csv or .json file; export mode: the folder to create")
    p.add_argument("--window", type=positive, default=None, help="predict mode: slide a window of SECONDS over each whole recording")
    p.add_argument("--hop", type=positive, default=1.0, help="predict mode with --window: seconds between windows (default 1)")
    p.add_argument("--silence_db", type=float, default=None, help="predict mode with --window: windows quieter than this "
                   "RMS level (dBFS, default -45) are marked silent")
    p.add_argument("--plot", action="store_true", help="predict mode with --window: one PNG timeline per file")
    p.add_argument("--format", choices=("keras", "saved_model", "tflite", "onnx"), default="onnx", help="export mode")
    p.add_argument("--input", choices=EXPORT_INPUTS, default="mfcc",
                   help="export mode: what the exported model takes: mfcc (the MFCC matrix, the default) or audio "
                        "(mono float32 samples at the model's rate, 22050 Hz; the crop/pad and the MFCC run inside "
                        "the graph; saved_model, tflite, onnx)")
    p.add_argument("--fold", type=at_least(1), default=None, help="export mode: one fold's model (default: all folds averaged); "
                   "test mode with --tsne: that fold's t-SNE panel alone")
    p.add_argument("--overwrite", action="store_true", help="export: replace an earlier export of ours at --output; predict: an earlier predictions file of ours (never anything else)")
    p.add_argument("--source", help="cross mode: source corpus, or 'all' for every pair")
    p.add_argument("--target", help="cross mode: target corpus")
    p.add_argument("--runs", type=at_least(1), default=1, help="cross mode: seeds per pair")
    p.add_argument("--mean_signal_length", type=at_least(2048), default=None, help="cross mode: common length (default: the source's)")
    return p


def main(argv=None):
    return _run(_main, argv)


def _model_config(args, name, frames, n_mfcc, num_classes):
    from .run_config import ModelConfig

    return ModelConfig(frames=int(frames), n_mfcc=int(n_mfcc), num_classes=int(num_classes),
                       num_blocks=args.dilation_size or default_num_blocks(name), filters=args.filter_size,
                       kernel_size=args.kernel_size, stacks=args.stack_size, dropout_rate=args.dropout,
                       activation=args.activation, variant=args.model)


def _training(args):
    from .run_config import TrainingConfig

    return TrainingConfig(lr=args.lr, beta1=args.beta1, beta2=args.beta2, batch_size=args.batch_size, epoch=args.epoch,
                          precision=args.precision)


def _trainer(args):
    from .trainers import resolve_trainer

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
    from .extract import cached_or_extracted

    return cached_or_extracted(name, args.mfcc_path, args.wav_dir, args.allow_pickle)


def _main(argv):
    parser = main_parser()
    args = parser.parse_args(argv)
    check_mode_flags(parser, args)
    from .inputs import check_window

    check_window(args.window, args.hop, args.silence_db)
    if args.mode == "cross":
        return _cross(args)
    name = _data_name(check_data_name(args.data, "--data") if args.data is not None else DEFAULT_DATA)
    if args.mode == "train" and args.resume and args.data is None:
        from .run_store import read_run_config

        name = read_run_config(args.resume.rstrip("/")).data  # the run knows its corpus
    test_path = None
    if args.mode in ("test", "predict", "export"):
        _check_output(args)
        test_path, name = _chosen_run(args, name)
    from .cache import cache_path

    if args.mode != "predict" and canonical_name(name) is None and not os.path.isfile(cache_path(args.mfcc_path, name)) \
            and not args.wav_dir:
        _fail(f"unknown --data {name!r}: not one of {', '.join(known_corpus_names())} "
              f"and no {cache_path(args.mfcc_path, name)}; extract it with Code/extract_feature.py")
    if args.mode == "predict":
        return _predict(args, name, test_path)
    if args.mode == "export":
        return _export(args, name, test_path)
    setup_device(args.gpu, args.backend, getattr(args, "precision", "float32"), args.verbose)
    from . import runs

    features = _features(args, name)
    seed = _seed(args, name)
    if args.mode == "train":
        from .inputs import check_activation

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
    from .run_store import read_run_config

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
        from .export import check_export_request

        check_export_request(args.format, args.input)
        if not args.output:
            _fail("export mode needs --output DIR (the folder to create)")
        if os.path.lexists(args.output):
            if not args.overwrite:
                _fail(f"--output {args.output} exists; choose another folder or add --overwrite")
            from .export import refuse_to_replace

            refuse_to_replace(args.output)
    elif args.mode == "predict" and args.output:
        if os.path.isdir(args.output):
            _fail(f"--output {args.output} is a folder; name a .csv or .json file to write")
        if os.path.lexists(args.output):
            from .prediction import is_predictions_file

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
    from . import run_store

    test_path = os.path.normpath(args.test_path) if args.test_path else run_store.newest_run(args.model_path, name)
    run_config, files = run_store.read_saved_run(test_path, corpus=name)
    if args.data is not None or run_config.source:
        run_store.check_corpus(test_path, run_config, name)
    if args.fold is not None and not 1 <= args.fold <= len(files):
        raise InputError(f"--fold {args.fold}: {test_path} has folds 1 to {len(files)}")
    print(run_store.describe_run(test_path, run_config, len(files)))
    return test_path, (name if run_config.source else run_config.data)


def _predict(args, name, test_path):
    from .corpora import audio_files

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
    from . import prediction

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
    from . import run_store

    normalise = run_store.read_run_config(test_path).normalise if run_store.is_run_dir(test_path) else "none"
    if normalise != "speaker":
        _fail(f"--enrol gives a speaker's statistics, which only a run trained with --normalise speaker uses; "
              f"{test_path}'s normalisation is {normalise}: drop --enrol")
    if not os.path.isdir(args.enrol):
        _fail(f"--enrol {args.enrol}: no such folder (name a folder of the speaker's recordings)")


def _saved_classifier(test_path, name, fold=None):
    """The classifier of a run of ours or an authors' folder of corpus `name`."""
    from . import run_store
    from .classifier import TimnetClassifier

    if run_store.is_run_dir(test_path):
        return TimnetClassifier.from_run(test_path, fold=fold)
    return TimnetClassifier.from_weights(test_path, corpus=name, fold=fold)


def _predict_timeline(args, classifier, paths):
    from .io import time_stamp, write_text_atomic
    from .preprocessor import BadAudioError
    from .timeline import SILENCE_DB, plot_timeline, predict_timeline, timeline_text

    silence = SILENCE_DB if args.silence_db is None else args.silence_db
    statistics = None
    if classifier.preprocessor.normalise == "speaker":  # one speaker's statistics for every window of every file
        from .prediction import enrolment_statistics
        from .timeline import timeline_statistics

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
    from . import run_store
    from .export import check_exportable

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
    from .cache import cache_path, load_features
    from .config import DEFAULT_SEED
    from .cross_corpus import cross_corpus, cross_corpus_pairs, write_cross_results

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

def reproduce_parser():
    p = Parser(description="Reproduce the paper's tables: a resumable grid of units, each leaving a "
                           "record in the registry; REPRODUCTION.md is generated from the records")
    p.add_argument("--table", default="1", help="1, 2, 3, B (the baselines: MFCC statistics and eGeMAPS with a linear "
                                                "classifier, on the same folds), a comma list (1,3) or all (default: 1)")
    p.add_argument("--corpora", default="EMODB,CASIA,EMOVO", help="comma list of corpora (default: EMODB,CASIA,EMOVO)")
    p.add_argument("--seeds", type=at_least(1), default=1, help="seeds per cell, from the corpus table's (default: 1)")
    p.add_argument("--epoch", type=at_least(1), default=TRAINING_DEFAULTS["epoch"], help="epochs per training (paper: 500)")
    p.add_argument("--split_fold", type=at_least(2), default=TRAINING_DEFAULTS["split_fold"], help="folds per cell (paper: 10)")
    p.add_argument("--protocol", choices=("kfold", "speaker", "both"), default="kfold",
                   help="cv cells: kfold (the paper's 10 folds), speaker (leave one speaker out, a fold per speaker) "
                        "or both (default: kfold)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="bfloat16: the cells again in mixed precision, reported beside the float32 ones (default: float32)")
    p.add_argument("--normalise", default=DEFAULT_NORMALISE,
                   help="TIM-Net's cv cells (tables 1 and 3) on features normalised these ways: a comma list of "
                        f"{', '.join(NORMALISATIONS)} (default: none, the authors' raw MFCCs); a normalised cell is "
                        "keyed -norm-<option>, the raw cells keep their keys")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="ray: HOST:PORT of a running cluster (default: start one here)")
    p.add_argument("--workers", type=at_least(1), default=None, help="ray: worker actors (default: one per CPU)")
    p.add_argument("--cpus-per-worker", dest="cpus_per_worker", type=positive, default=1)
    p.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=within(0, 64), default=0)
    p.add_argument("--registry", default="reproduction", help="the registry folder (default: ./reproduction)")
    p.add_argument("--report", default="REPRODUCTION.md", help="the generated report (default: ./REPRODUCTION.md)")
    p.add_argument("--report-only", dest="report_only", action="store_true", help="regenerate the report, train nothing")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="list the units and which are finished")
    p.add_argument("--mfcc_path", default="MFCC", help="feature caches (default: ./MFCC)")
    p.add_argument("--corpora_dir", default=None, help="extract a missing cache from <corpora_dir>/<CORPUS>/ (e.g. ../shared/corpora)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None)
    p.add_argument("--verbose", action="store_true", help="show the backend's own start-up logging")
    p.add_argument("--gpu", default=None, help="CUDA device index (sets CUDA_VISIBLE_DEVICES; left alone when not given)")
    p.add_argument("--no-xla", dest="jit_compile", action="store_false", help="train without XLA: slower, the same training up to round-off (README)")
    p.add_argument("--run-eagerly", dest="run_eagerly", action="store_true", help="no graph at all (tiny grids, debugging)")
    p.add_argument("--trainer", choices=("auto", "batched", "sequential"), default="auto",
                   help="local executor: batched trains every seed and fold of a cell shape as one JAX program "
                        "(the default on a GPU; records stay one per fold)")
    return p


def reproduce_main(argv=None):
    return _run(_reproduce, argv)


def _reproduce(argv):
    from .grid import GridSpec, expand, parse_normalisations, parse_protocols, parse_tables
    from .registry import finished_units, pending_units

    args = reproduce_parser().parse_args(argv)
    corpora = tuple(_data_name(name.strip()) for name in args.corpora.split(",") if name.strip())
    if not corpora:
        _fail("--corpora: name at least one corpus")
    from .cache import cache_path

    unknown = [c for c in corpora if canonical_name(c) is None and not os.path.isfile(cache_path(args.mfcc_path, c))]
    if unknown:
        raise InputError(f"--corpora: {', '.join(unknown)} is neither one of {', '.join(known_corpus_names())} nor an "
                         f"extracted cache under {args.mfcc_path}")
    if os.path.exists(args.registry) and not os.path.isdir(args.registry):
        raise InputError(f"--registry {args.registry} is a file; name a folder (default: reproduction)")
    spec = GridSpec(parse_tables(args.table), corpora, args.seeds, args.epoch, args.split_fold, args.precision,
                    parse_protocols(args.protocol), parse_normalisations(args.normalise))
    if args.report_only:
        from .reproduction import write_report

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
    from .reproduction import reproduce

    options = dict(jit_compile=args.jit_compile, run_eagerly=args.run_eagerly, trainer=_trainer(args))
    if args.executor == "ray":
        options.update(address=args.address, workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                       gpus_per_worker=args.gpus_per_worker)
    reproduce(spec, args.registry, args.mfcc_path, args.executor, args.corpora_dir, args.report, **options)
    return 0


def summarize_main(argv=None):
    p = Parser(description="One Markdown table (the paper's Table 1 layout) of the runs under Results/")
    p.add_argument("result_path", nargs="?", default="Results")
    p.add_argument("--output", help="also write the table to this file")
    args = p.parse_args(argv)

    def summarize(_):
        from .io import write_text_atomic
        from .results import summarize_results

        table = summarize_results(args.result_path)
        print(table)
        if args.output:
            write_text_atomic(args.output, table)
        return 0

    return _run(summarize, argv)
