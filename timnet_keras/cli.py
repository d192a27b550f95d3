"""The command lines (`Code/main.py`, `Code/extract_feature.py`, `Code/summarize.py`; the authors' flags).

Parsing and dispatch only: flags become typed configs, and the work is done
by the library modules. `MFCC/`, `Models/`, `Results/` and `SER_WAV_DATA/`
are relative to the working directory, never to the installed package.
Every expected failure ends in a one-line `error: ...` and exit status 2.
"""
import argparse
import sys

from timnet_keras import commands
from timnet_keras.commands import DEFAULT_DATA, EXIT_ERROR
from timnet_keras.config import (BACKENDS, DEFAULT_NORMALISE, EXECUTORS, EXPORT_FORMATS, EXPORT_INPUTS, FOLD_PROTOCOLS, GRID_PROTOCOLS,
                     MODEL_VARIANTS, MODES, NORMALISATIONS, PRECISIONS, SELECTIONS, TRAINERS, TRAINING_DEFAULTS,
                     known_corpus_names)
from timnet_keras.errors import TimnetError
from timnet_keras.inputs import at_least, positive, seed_value, within


# --- flag types: a bad value is one `error:` line naming the flag, exit status 2 --------------

class Parser(argparse.ArgumentParser):
    """argparse with one `error:` line instead of the usage block: the message names the flag; --help shows the rest."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # an abbreviation (--ep) would slip past --resume's comparison
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


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
    def extract(argv):
        parser = extract_parser()
        return commands.extract(parser.parse_args(argv), parser)

    return _run(extract, argv)


def shared_flags():
    """The flags `main.py` and `reproduce.py` share: device, backend, trainer, precision, caches."""
    p = Parser(add_help=False)
    p.add_argument("--mfcc_path", default="MFCC", help="feature caches (default: ./MFCC)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: KERAS_BACKEND, else tensorflow); jax trains in half the memory")
    p.add_argument("--gpu", default=None, help="CUDA device index (sets CUDA_VISIBLE_DEVICES; left alone when not given)")
    p.add_argument("--verbose", action="store_true", help="show the backend's own start-up logging")
    p.add_argument("--no-xla", dest="jit_compile", action="store_false",
                   help="train without XLA: slower, the same training up to round-off (README)")
    p.add_argument("--run-eagerly", "--run_eagerly", dest="run_eagerly", action="store_true",
                   help="train without any graph: slow steps, no tracing; for debugging your own layers")
    p.add_argument("--trainer", choices=TRAINERS, default="auto",
                   help="batched: folds (the grid: a cell's units) as one compiled JAX program, the GPU default; "
                        "sequential: fold after fold, the CPU and TensorFlow default")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="bfloat16: mixed precision (bfloat16 compute, float32 weights); opt-in, its own accuracy")
    return p


# --- main.py --------------------------------------------------------------------------------

def main_parser():
    d = TRAINING_DEFAULTS
    p = Parser(description="TIM-Net: train (k-fold CV), test saved fold weights, predict, cross-corpus",
               parents=[shared_flags()])
    p.add_argument("--mode", default="train", choices=MODES)
    p.add_argument("--data", default=None, help=f"corpus: {', '.join(known_corpus_names())} or an own extracted corpus "
                   f"(default: the run's own corpus, else {DEFAULT_DATA})")
    p.add_argument("--model_path", default="Models", help="run folders (default: ./Models)")
    p.add_argument("--result_path", default="Results", help="result folders (default: ./Results)")
    p.add_argument("--test_path", default=None, help="run folder or authors' weights folder (default: newest run of --data)")
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
    p.add_argument("--model", default="timnet", choices=tuple(MODEL_VARIANTS),
                   help="timnet (default) or an ablation of the paper's Table 3")
    p.add_argument("--protocol", default="kfold", choices=FOLD_PROTOCOLS)
    p.add_argument("--select", default="last", choices=SELECTIONS,
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
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="export mode")
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
    def run(argv):
        parser = main_parser()
        args = parser.parse_args(argv)
        check_mode_flags(parser, args)
        return commands.run_main(args, argv)

    return _run(run, argv)


def reproduce_parser():
    p = Parser(description="Reproduce the paper's tables: a resumable grid of units, each leaving a "
                           "record in the registry; REPRODUCTION.md is generated from the records", parents=[shared_flags()])
    p.add_argument("--table", default="1", help="1, 2, 3, B (the baselines: MFCC statistics and eGeMAPS with a linear "
                                                "classifier, on the same folds), a comma list (1,3) or all (default: 1)")
    p.add_argument("--corpora", default="EMODB,CASIA,EMOVO", help="comma list of corpora (default: EMODB,CASIA,EMOVO)")
    p.add_argument("--seeds", type=at_least(1), default=1, help="seeds per cell, from the corpus table's (default: 1)")
    p.add_argument("--epoch", type=at_least(1), default=TRAINING_DEFAULTS["epoch"], help="epochs per training (paper: 500)")
    p.add_argument("--split_fold", type=at_least(2), default=TRAINING_DEFAULTS["split_fold"], help="folds per cell (paper: 10)")
    p.add_argument("--protocol", choices=(*GRID_PROTOCOLS, "both"), default="kfold",
                   help="cv cells: kfold (the paper's 10 folds), speaker (leave one speaker out, a fold per speaker) "
                        "or both (default: kfold)")
    p.add_argument("--normalise", default=DEFAULT_NORMALISE,
                   help="TIM-Net's cv cells (tables 1 and 3) on features normalised these ways: a comma list of "
                        f"{', '.join(NORMALISATIONS)} (default: none, the authors' raw MFCCs); a normalised cell is "
                        "keyed -norm-<option>, the raw cells keep their keys")
    p.add_argument("--executor", choices=EXECUTORS, default="local")
    p.add_argument("--address", default=None, help="ray: HOST:PORT of a running cluster (default: start one here)")
    p.add_argument("--workers", type=at_least(1), default=None, help="ray: worker actors (default: one per CPU)")
    p.add_argument("--cpus-per-worker", dest="cpus_per_worker", type=positive, default=1)
    p.add_argument("--gpus-per-worker", dest="gpus_per_worker", type=within(0, 64), default=0)
    p.add_argument("--registry", default="reproduction", help="the registry folder (default: ./reproduction)")
    p.add_argument("--report", default="REPRODUCTION.md", help="the generated report (default: ./REPRODUCTION.md)")
    p.add_argument("--report-only", dest="report_only", action="store_true", help="regenerate the report, train nothing")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="list the units and which are finished")
    p.add_argument("--corpora_dir", default=None, help="extract a missing cache from <corpora_dir>/<CORPUS>/ (e.g. ../shared/corpora)")
    return p


def reproduce_main(argv=None):
    return _run(lambda argv: commands.reproduce_grid(reproduce_parser().parse_args(argv)), argv)


def build_preset_main(argv=None):
    p = Parser(description="Pack a finished, honest run folder as a preset: TimnetClassifier.from_preset(NAME)")
    p.add_argument("run", help="the run folder (Models/<run>/); its folds must be finished, not test-selected")
    p.add_argument("--name", required=True, help="the preset's name, e.g. emodb")
    p.add_argument("--presets_dir", default=None, help="where to put it (default: the package's presets/ folder)")
    p.add_argument("--data", default=None, help="the run's corpus cache name, to list each fold's utterances (default: the run's)")
    p.add_argument("--mfcc_path", default="MFCC", help="feature caches (default: ./MFCC)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier preset of that name")
    return _run(lambda argv: commands.build_preset(p.parse_args(argv)), argv)


def summarize_main(argv=None):
    p = Parser(description="One Markdown table (the paper's Table 1 layout) of the runs under Results/")
    p.add_argument("result_path", nargs="?", default="Results")
    p.add_argument("--output", help="also write the table to this file")
    args = p.parse_args(argv)

    def summarize(_):
        from timnet_keras.io import write_text_atomic
        from timnet_keras.runs.results import summarize_results

        table = summarize_results(args.result_path)
        print(table)
        if args.output:
            write_text_atomic(args.output, table)
        return 0

    return _run(summarize, argv)
