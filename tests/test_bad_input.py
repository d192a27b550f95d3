"""Bad input, everywhere: one row per thing a user can get wrong.

Each case runs the command line in-process (an unexpected exception would
fail the test: no traceback reaches the user) and asserts the exit status,
one `error:` line naming the file or flag, and that no file was left behind
or changed.
"""
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from conftest import CHEAP_GRAPH, REPO
from timnet_keras import cli
from timnet_keras.features.cache import save_feature_cache
from timnet_keras.features.demo import write_demo_wavs
from timnet_keras.features.extract import demo_features

# Backend-agnostic command-line checks: make test runs them once, in its JAX pass, where tiny trainings are cheapest.
pytestmark = pytest.mark.jax_pass

TINY = ["--epoch", "8", "--dilation_size", "2", "--split_fold", "4", "--batch_size", "8", *CHEAP_GRAPH]


def _paths(root):
    return ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with a DEMO cache and one finished 4-fold run, made once (also the uninterrupted reference)."""
    root = tmp_path_factory.mktemp("trained")
    save_feature_cache(str(root / "MFCC" / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=24))
    flags = _paths(root)
    assert cli.main(["--mode", "train", "--data", "DEMO", *TINY, *flags]) == 0
    return root


@pytest.fixture
def workspace(trained, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(trained, root)
    (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
    flags = _paths(root)
    return root, run, flags


def snapshot(root):
    return {os.path.relpath(p, root): hashlib.sha1(open(p, "rb").read()).hexdigest()
            for p in glob.glob(str(root / "**" / "*"), recursive=True) if os.path.isfile(p)}


def truncate(path, size):
    data = open(path, "rb").read()[:size]
    open(path, "wb").write(data)


# --- the cases: (id, set-up(root, run) -> argv, words the error line must hold) ----------------

def _cache(root):
    return str(root / "MFCC" / "DEMO.npz")


def _npz_without_x(root, run):
    with np.load(_cache(root)) as data:
        arrays = {k: data[k] for k in data.files if k != "x"}
    np.savez(_cache(root), **arrays)
    return ["--mode", "train", "--data", "DEMO", *TINY], ["DEMO.npz", "no 'x' array"]


def _npz_with_nan(root, run):
    with np.load(_cache(root)) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["x"][0, :3, 0] = [np.nan, np.inf, -np.inf]
    np.savez(_cache(root), **arrays)
    return ["--mode", "train", "--data", "DEMO", *TINY], ["DEMO.npz", "3 NaN or infinite"]


class _Payload:
    def __reduce__(self):
        return (open, ("/tmp/timnet-pickle-ran", "w"))


def _crafted_pickle(root, run):
    with open(root / "MFCC" / "EMODB.npy", "wb") as handle:  # an "authors' cache" that runs code when unpickled
        np.lib.format.write_array(handle, np.array([_Payload()], dtype=object), allow_pickle=True)
    return ["--mode", "train", "--data", "EMODB", *TINY], ["EMODB.npy", "--allow-pickle"]


def _weights(run, fold):
    return os.path.join(run, f"4-fold_weights_best_{fold}.hdf5")


def _mixed_folds(root, run):
    shutil.copy(_weights(run, 1), os.path.join(run, "5-fold_weights_best_1.hdf5"))
    return ["--mode", "test", "--data", "DEMO", "--test_path", run], ["mixes weights of [4, 5]-fold runs"]


def _flag(*argv):
    return lambda root, run: (["--mode", "train", "--data", "DEMO", *TINY, *argv], [argv[0]])


CASES = [
    ("truncated cache", lambda root, run: (truncate(_cache(root), 5000), ["--mode", "train", "--data", "DEMO", *TINY])[1],
     ["DEMO.npz", "re-extract"]),
    ("random-bytes cache", lambda root, run: (open(_cache(root), "wb").write(os.urandom(3000)), ["--mode", "train", "--data", "DEMO", *TINY])[1],
     ["DEMO.npz", "not a usable feature cache"]),
    ("empty cache", lambda root, run: (open(_cache(root), "wb").close(), ["--mode", "train", "--data", "DEMO", *TINY])[1],
     ["DEMO.npz"]),
    ("cache without x", None, None),
    ("cache with NaN", None, None),
    ("crafted pickle .npy", None, None),
    ("truncated fold weights", lambda root, run: (truncate(_weights(run, 3), 2000), ["--mode", "test", "--data", "DEMO", "--test_path", run])[1],
     ["4-fold_weights_best_3.hdf5", "re-train that fold"]),
    ("text as fold weights", lambda root, run: (open(_weights(run, 2), "w").write("hello"), ["--mode", "test", "--data", "DEMO", "--test_path", run])[1],
     ["4-fold_weights_best_2.hdf5"]),
    ("mixed 4- and 5-fold weights", None, None),
    ("damaged run config", lambda root, run: (truncate(os.path.join(run, "run_config.json"), 40), ["--mode", "test", "--data", "DEMO", "--test_path", run])[1],
     ["run_config.json", "damaged"]),
    ("--epoch 0", _flag("--epoch", "0"), None),
    ("--batch_size 0", _flag("--batch_size", "0"), None),
    ("--split_fold 1", _flag("--split_fold", "1"), None),
    ("--split_fold above the samples", lambda root, run: (["--mode", "train", "--data", "DEMO", *TINY, "--split_fold", "25"]),
     ["--split_fold 25", "2 to 24 folds"]),
    ("--dropout 1", _flag("--dropout", "1"), None),
    ("--lr 0", _flag("--lr", "0"), None),
    ("--lr text", _flag("--lr", "fast"), None),
    ("--beta1 1.5", _flag("--beta1", "1.5"), None),
    ("--filter_size 0", _flag("--filter_size", "0"), None),
    ("--resume with other flags", lambda root, run: ["--mode", "train", "--resume", run, *TINY, "--lr", "0.1", "--dilation_size", "4"],
     ["--lr 0.001 -> 0.1", "--dilation_size 2 -> 4", "--force"]),
    ("--output in a missing folder", lambda root, run: ["--mode", "predict", "--data", "DEMO", "--test_path", run, "--wav",
                                                        write_demo_wavs(str(root / "w"), 1)[0], "--output", str(root / "no" / "p.csv")],
     ["--output", "does not exist"]),
]
def _predict(*argv):
    return lambda root, run: ["--mode", "predict", "--data", "DEMO", "--test_path", run, "--wav",
                              write_demo_wavs(str(root / "w"), 1)[0], *argv]


def _edit_run_config(change):
    def setup(root, run):
        import json

        path = os.path.join(run, "run_config.json")
        config = json.load(open(path))
        change(config)
        open(path, "w").write(json.dumps(config))
        return ["--mode", "test", "--data", "DEMO", "--test_path", run]

    return setup


def _edit_cache(change):
    def setup(root, run):
        with np.load(_cache(root)) as data:
            arrays = {k: data[k] for k in data.files}
        change(arrays)
        np.savez(_cache(root), **arrays)
        return ["--mode", "test", "--data", "DEMO", "--test_path", run]

    return setup


def _one_speaker(arrays):
    arrays["speakers"] = np.full(len(arrays["x"]), "s1")


CASES += [
    ("--hop longer than --window", _predict("--window", "2", "--hop", "3"), ["--hop 3", "--window 2"]),
    ("--silence_db above full scale", _predict("--window", "2", "--silence_db", "10"), ["--silence_db 10", "dBFS"]),
    ("--silence_db without --window", _predict("--silence_db", "-40"), ["--silence_db", "--window"]),
    ("--random_seed negative", _flag("--random_seed", "-1"), None),
    ("--activation unknown to Keras", _flag("--activation", "rellu"), ["--activation 'rellu'"]),
    ("--gpu not an index", _flag("--gpu", "first"), ["--gpu 'first'"]),
    ("an abbreviated flag", lambda root, run: ["--mode", "train", "--resume", run, "--ep", "3"], ["--ep"]),
    ("a run of another corpus than --data", lambda root, run: ["--mode", "test", "--data", "EMOVO", "--test_path", run],
     ["holds a DEMO model but --data is EMOVO"]),
    ("--source and --target the same corpus", lambda root, run: ["--mode", "cross", "--source", "DEMO", "--target", "demo"],
     ["--source and --target are both DEMO"]),
    ("--fold beyond the run's folds", lambda root, run: ["--mode", "export", "--data", "DEMO", "--test_path", run, "--fold", "5",
                                                       "--output", str(root / "exported")], ["--fold 5", "folds 1 to 4"]),
    ("predict --output naming a folder", _predict("--output", "."), ["--output .", "is a folder"]),
    ("predict a file that does not exist", lambda root, run: ["--mode", "predict", "--test_path", run, "--wav", "/no/such.wav"],
     ["--wav: no such file: /no/such.wav"]),
    ("run config with the seed as a string", _edit_run_config(lambda c: c.update(seed="46")),
     ["run_config.json", "field 'seed' is \"46\" (a str); expected int"]),
    ("run config with a misspelt field", _edit_run_config(lambda c: c.update(sede=46)), ["unknown field 'sede'"]),
    ("cache re-extracted at another length", _edit_cache(lambda a: a.update(x=a["x"][:, :10])),
     ["DEMO cache has 10 frames per utterance", "trained on 17"]),
    ("--protocol speaker with one speaker", lambda root, run: (_edit_cache(_one_speaker)(root, run),
                                                               ["--mode", "train", "--data", "DEMO", *TINY, "--protocol", "speaker"])[1],
     ["at least two speakers", "--speaker_regex"]),
]
def _own_file(root, name, content="mine"):
    path = root / name
    path.write_text(content)
    return str(path)


CASES += [
    ("a flag of another mode (--tsne in predict)", _predict("--tsne"), ["--tsne applies to --mode test"]),
    ("a flag of another mode (--epoch in export)", lambda root, run: ["--mode", "export", "--test_path", run, "--epoch", "5",
                                                                     "--output", str(root / "e")], ["--epoch applies to"]),
    ("--hop without --window", _predict("--hop", "0.5"), ["--hop applies to windows"]),
    ("--plot without --window", _predict("--plot"), ["--plot applies to windows"]),
    ("an empty --output", _predict("--output", ""), ["--output is empty"]),
    ("a seed NumPy cannot take", _flag("--random_seed", "99999999999999999999"), ["--random_seed", "must be at most"]),
    ("a --data name with folders in it", lambda root, run: ["--mode", "train", "--data", "../evil", *TINY], ["--data '../evil'"]),
    ("predict --output over a user's file", lambda root, run: _predict("--output", _own_file(root, "mine.csv"))(root, run),
     ["mine.csv exists", "--overwrite"]),
    ("predict --overwrite over a user's file", lambda root, run: _predict("--output", _own_file(root, "mine.csv"),
                                                                          "--overwrite")(root, run),
     ["--overwrite will not replace", "not a predictions file of ours"]),
    ("predict --overwrite over a run's fold record", lambda root, run: _predict("--output", os.path.join(run, "fold_1.json"),
                                                                               "--overwrite")(root, run),
     ["fold_1.json", "not a predictions file of ours"]),
    ("run config with labels that do not match the classes", _edit_run_config(lambda c: c.update(labels=["a", "b", "c"])),
     ["run_config.json", "3 labels but model.num_classes 4"]),
    ("run config with an unknown variant", _edit_run_config(lambda c: c["model"].update(variant="zzz")),
     ["model.variant 'zzz'"]),
    ("run config with an activation Keras does not know", _edit_run_config(lambda c: c["model"].update(activation="nope")),
     ["do not build a model", "run_config.json", "nope"]),
]
SETUPS = {"cache without x": (_npz_without_x, None), "cache with NaN": (_npz_with_nan, None),
          "crafted pickle .npy": (_crafted_pickle, None), "mixed 4- and 5-fold weights": (_mixed_folds, None)}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_changes_nothing(case, workspace, capsys):
    _, setup, words = next(c for c in CASES if c[0] == case)
    root, run, flags = workspace
    if case in SETUPS:
        setup = SETUPS[case][0]
    result = setup(root, run)
    argv, words = result if isinstance(result, tuple) else (result, words)
    if os.path.exists("/tmp/timnet-pickle-ran"):
        os.remove("/tmp/timnet-pickle-ran")
    before = snapshot(root)
    try:
        status = cli.main([*argv, *flags])
    except SystemExit as exit_:  # argparse and early checks exit this way
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words or []:
        assert word in lines[0], lines[0]
    assert snapshot(root) == before  # nothing written, nothing changed, no temporaries
    assert not os.path.exists("/tmp/timnet-pickle-ran")  # the crafted pickle never ran


# --- audio: what extraction refuses, and what it must simply read ---------------------------

def _own_corpus(root):
    """A two-class own corpus of good files; returns its folder."""
    folder = root / "corpus"
    for label in ("calm", "joy"):
        for k in range(2):
            path = folder / label / f"s{k}_{label}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(path), (0.1 * np.random.default_rng(k).normal(size=16000)).astype(np.float32), 16000)
    return folder


@pytest.mark.parametrize("name,content,words", [
    ("zero.wav", b"", ["zero.wav", "empty file", "--skip-bad"]),
    ("header_only.wav", None, ["header_only.wav", "--skip-bad"]),
    ("notes.wav", b"these are my notes, not audio\n" * 20, ["notes.wav", "not readable as audio"]),
])
def test_bad_audio_stops_extraction_with_one_line_naming_the_file(tmp_path, capsys, name, content, words):
    folder = _own_corpus(tmp_path)
    target = folder / "joy" / name
    if content is None:
        soundfile.write(str(target), np.zeros(0, np.float32), 16000)  # a valid header and no samples
    else:
        target.write_bytes(content)
    before = snapshot(tmp_path)
    status = cli.extract_main(["--data_name", "Mine", "--wav_dir", str(folder), "--mfcc_path", str(tmp_path / "MFCC"), "--workers", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err
    assert all(word in lines[0] for word in words), lines[0]
    assert snapshot(tmp_path) == before


def test_every_pcm_width_rate_channel_count_and_format_libsndfile_reads_is_extracted(tmp_path, capsys):
    folder = tmp_path / "corpus"
    signal = 0.3 * np.sin(np.linspace(0, 2000, 48000)).astype(np.float32)
    files = {"calm/a 8bit.wav": ("PCM_U8", 16000, 1), "calm/b,24bit.wav": ("PCM_24", 16000, 1),
             "joy/c_32bit_float.wav": ("FLOAT", 22050, 1), "joy/d_stéreo_48k.wav": ("PCM_16", 48000, 2),
             "joy/e.flac": ("PCM_16", 44100, 1)}
    for rel, (subtype, rate, channels) in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        data = signal if channels == 1 else np.stack([signal, -signal], axis=1)
        soundfile.write(str(folder / rel), data, rate, subtype=subtype)
    os.symlink(folder, folder / "joy" / "loop")  # a symlink loop must not hang or duplicate
    assert cli.extract_main(["--data_name", "Mine", "--wav_dir", str(folder), "--mfcc_path", str(tmp_path / "MFCC"),
                             "--workers", "1"]) == 0
    from timnet_keras.features.cache import load_feature_cache

    features = load_feature_cache(str(tmp_path / "MFCC" / "Mine.npz"))
    assert sorted(features.paths) == sorted(files) and np.isfinite(features.x).all()


@pytest.mark.slow
def test_resume_with_other_flags_is_accepted_with_force(workspace, capsys):
    root, run, flags = workspace
    os.remove(os.path.join(run, "fold_3.json"))
    assert cli.main(["--mode", "train", "--resume", run, *TINY, "--lr", "0.1", "--force", *flags]) == 0
    import json

    assert json.load(open(os.path.join(run, "run_config.json")))["training"]["lr"] == 0.001  # the run's own settings


@pytest.mark.slow
def test_a_loss_that_becomes_nan_stops_the_fold_naming_the_epoch(workspace, capsys):
    root, run, flags = workspace
    shutil.rmtree(root / "Models")
    assert cli.main(["--mode", "train", "--data", "DEMO", *TINY, "--lr", "1e30", *flags]) == 2  # Adam steps that overflow
    err = capsys.readouterr().err
    assert "fold 1: the training loss became" in err and "epoch 1" in err
    (new_run,) = glob.glob(str(root / "Models" / "DEMO_*"))
    assert sorted(os.listdir(new_run)) == ["run_config.json"]  # no NaN weights written


# --- interruption: any signal mid-fold, then --resume, equals an uninterrupted run -----------

# Folds long enough to be stopped half-way through: 60 epochs take 1.5-2 s each (JAX, 2 busy cores), longer on TensorFlow.
LONG_FOLDS = [*TINY, "--epoch", "60"]  # the last --epoch is the one taken


def _train_command(root, *extra):
    return [sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", "DEMO", *LONG_FOLDS,
            *_paths(root), *extra]


def _probabilities(run):
    import json

    return {k: json.load(open(os.path.join(run, f"fold_{k}.json")))["probabilities"] for k in range(1, 5)}


def _finished_files(run):
    return {name: open(os.path.join(run, name), "rb").read() for name in os.listdir(run) if name.startswith(("fold_", "4-fold"))}


@pytest.mark.slow
def test_a_run_killed_mid_fold_by_any_signal_resumes_to_the_uninterrupted_result(trained, tmp_path):
    """SIGTERM in fold 2 (a scheduler's stop; Ctrl-C's SIGINT takes the same handler), SIGKILL in fold 3 of the
    resumed run; then it finishes."""
    reference_root, root = tmp_path / "uninterrupted", tmp_path / "interrupted"
    for folder in (reference_root, root):
        shutil.copytree(trained / "MFCC", folder / "MFCC")
    assert cli.main(["--mode", "train", "--data", "DEMO", *LONG_FOLDS, *_paths(reference_root)]) == 0
    extra, previous = [], {}
    for fold, signal_name in ((2, "SIGTERM"), (3, "SIGKILL")):
        process = subprocess.Popen(_train_command(root, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 300
        while not glob.glob(str(root / "Models" / "DEMO_*" / f"fold_{fold - 1}.json")) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # into fold `fold`
        process.send_signal(getattr(signal, signal_name))
        stderr = process.communicate(timeout=120)[1]
        (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
        if signal_name != "SIGKILL":
            assert process.returncode in (130, 143), stderr[-2000:]
            assert f"continue with: python Code/main.py --mode train --resume {run}".encode() in stderr, stderr[-2000:]
        finished = _finished_files(run)
        assert f"fold_{fold - 1}.json" in finished and f"fold_{fold}.json" not in finished, (signal_name, sorted(finished))
        extra = ["--resume", run]
        assert all(previous[name] == finished[name] for name in previous), f"a finished fold changed after {signal_name}"
        previous = finished
    subprocess.run(_train_command(root, *extra), check=True, capture_output=True, timeout=600)
    assert all(open(os.path.join(run, name), "rb").read() == content for name, content in previous.items())
    assert not [name for name in os.listdir(run) if ".tmp-" in name]
    (reference,) = glob.glob(str(reference_root / "Models" / "DEMO_*"))
    resumed, uninterrupted = _probabilities(run), _probabilities(reference)
    for k in range(1, 5):
        np.testing.assert_allclose(resumed[k], uninterrupted[k], atol=1e-5)


# --- export --overwrite: only an earlier export of ours is ever replaced ----------------------

def _user_folder(root):
    folder = root / "mine"
    (folder / "thesis").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "thesis" / "ch1.tex").write_text("chapter one")
    return folder


OVERWRITE_TARGETS = {  # name: (root, run) -> (--output, working folder)
    "a user's folder": lambda root, run: (str(_user_folder(root)), root),
    "the working folder, holding a user's files": lambda root, run: (".", _user_folder(root)),
    "a folder above the working folder": lambda root, run: (str(root), root / "Models"),
    "the trained run": lambda root, run: (run, root),
    "the folder of runs": lambda root, run: (str(root / "Models"), root),
    "an export with a user's file added": lambda root, run: (_export_with_extra_file(root, run), root),
}


def _export_with_extra_file(root, run):
    out = root / "exported"
    assert cli.main(["--mode", "export", "--data", "DEMO", "--test_path", run, "--format", "keras", "--output", str(out)]) == 0
    (out / "README-mine.txt").write_text("keep me")
    return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("target", list(OVERWRITE_TARGETS))
def test_overwrite_never_deletes_a_run_a_folder_of_runs_or_a_users_folder(target, workspace, monkeypatch, capsys):
    root, run, flags = workspace
    output, cwd = OVERWRITE_TARGETS[target](root, run)
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    before = snapshot(root)
    status = cli.main(["--mode", "export", "--data", "DEMO", "--test_path", run, "--format", "keras", "--output", output,
                       "--overwrite", *flags])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert status == 2 and len(lines) == 1 and "--overwrite will not replace" in lines[0], err
    assert snapshot(root) == before
    assert not [p for p in glob.glob(str(root / "**" / ".*export-*"), recursive=True)]


@pytest.mark.slow
def test_overwrite_replaces_an_earlier_export_and_leaves_no_temporaries(workspace, capsys):
    import json

    root, run, flags = workspace
    out = root / "exported"
    export = ["--mode", "export", "--data", "DEMO", "--test_path", run, "--format", "keras", "--output", str(out), *flags]
    assert cli.main([*export, "--fold", "1"]) == 0
    assert cli.main([*export, "--overwrite"]) == 0
    assert json.load(open(out / "timnet_export.json"))["fold"] is None  # the new export, not the old one
    assert sorted(os.listdir(root)) == sorted(["MFCC", "Models", "Results", "exported"])


# --- extraction flags: label lists and speaker patterns ----------------------------------------

@pytest.mark.parametrize("flags,words", [
    (["--labels", "calm,calm,joy"], ["--labels calm,calm,joy", "'calm' is listed twice"]),
    (["--labels", "calm,,joy"], ["--labels calm,,joy", "a blank name"]),
    (["--labels", "calm"], ["--labels calm", "at least two"]),
    (["--speaker_regex", "(unclosed"], ["--speaker_regex '(unclosed'", "not a regular expression"]),
])
def test_extraction_refuses_label_lists_and_patterns_that_would_give_a_wrong_corpus(tmp_path, capsys, flags, words):
    folder = _own_corpus(tmp_path)
    before = snapshot(tmp_path)
    status = cli.extract_main(["--data_name", "Mine", "--wav_dir", str(folder), "--mfcc_path", str(tmp_path / "MFCC"),
                               "--workers", "1", *flags])
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2 and len(lines) == 1 and all(word in lines[0] for word in words), lines
    assert snapshot(tmp_path) == before


def test_a_corpus_with_one_class_folder_is_refused_instead_of_training_to_100_percent(tmp_path, capsys):
    folder = _own_corpus(tmp_path)
    shutil.rmtree(folder / "joy")
    status = cli.extract_main(["--data_name", "Mine", "--wav_dir", str(folder), "--mfcc_path", str(tmp_path / "MFCC"),
                               "--workers", "1"])
    assert status == 2 and "at least two distinct class folders" in capsys.readouterr().err
    assert not (tmp_path / "MFCC").exists()


# --- the Python API: arrays converted as librosa would take them, or refused --------------------

@pytest.fixture(scope="module")
def small_classifier():
    from timnet_keras import MfccPreprocessor, TimnetBackbone, TimnetClassifier

    return TimnetClassifier(TimnetBackbone(frames=17, num_blocks=2), 4, preprocessor=MfccPreprocessor(8192))


def test_integer_pcm_and_stereo_signals_give_the_answer_of_their_float_mono(small_classifier):
    mono = (0.3 * np.sin(np.linspace(0, 900, 16000))).astype(np.float32)
    pcm = np.round(mono * 32767).astype(np.int16)
    expected = small_classifier.predict_signals([pcm.astype(np.float32) / 32768], 16000)
    np.testing.assert_allclose(small_classifier.predict_signals([pcm], 16000), expected, atol=1e-6)
    stereo = np.stack([mono, mono], axis=1)  # (samples, channels), as soundfile reads it
    np.testing.assert_allclose(small_classifier.predict_signals([stereo], 16000),
                               small_classifier.predict_signals([mono], 16000), atol=1e-6)


@pytest.mark.parametrize("call,words", [
    (lambda c: c.predict_signals([np.zeros(1000, np.float32)], sample_rate=0), "sample_rate 0"),
    (lambda c: c.predict_signals([np.zeros(0, np.float32)], 16000), "no samples"),
    (lambda c: c.predict_signals([np.full(100, np.nan, np.float32)], 16000), "NaN"),
    (lambda c: c.predict_signals([np.array(["a", "b"])], 16000), "is not audio"),
    (lambda c: c.predict_signals([], 16000), "non-empty list"),
    (lambda c: c.predict_signals(np.zeros((16000, 2), np.float32), 16000), "pass a list of recordings"),
    (lambda c: c.predict_files([]), "non-empty list of audio file paths"),
])
def test_the_python_api_refuses_what_is_not_audio_with_one_message(small_classifier, call, words):
    from timnet_keras.errors import InputError

    with pytest.raises(InputError, match=None) as refused:
        call(small_classifier)
    assert words in str(refused.value)


def test_a_silent_recordings_timeline_is_valid_json(small_classifier, tmp_path):
    import json

    from timnet_keras.runs.timeline import predict_timeline, timeline_text

    path = str(tmp_path / "silence.wav")
    soundfile.write(path, np.zeros(3 * 16000, np.float32), 16000)
    rows = predict_timeline(small_classifier, path, 1.0, 1.0)
    text = timeline_text(rows, json_format=True)
    windows = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert windows and all(w["level_db"] is None and w["silent"] for w in windows)


# --- the registry: a record counts once, in its own place, and one driver at a time -------------

def _registry_with_one_record(tmp_path):
    from timnet_keras.paper.registry import Unit, unit_record, write_record

    unit = Unit("cv", "DEMO", "timnet", 46, 1, fold=1, n_folds=2)
    record = unit_record(unit, ("a", "b"), np.arange(2), np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    return str(tmp_path / "registry"), write_record(str(tmp_path / "registry"), record)


def test_a_truncated_record_is_listed_as_damaged_not_done(tmp_path, capsys):
    registry, path = _registry_with_one_record(tmp_path)
    truncate(path, 40)
    assert cli.reproduce_main(["--table", "1", "--corpora", "DEMO", "--split_fold", "2", "--epoch", "1", "--registry", registry,
                               "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["damaged  cv/DEMO/timnet/seed46-e1/fold01",
                                                         "todo  cv/DEMO/timnet/seed46-e1/fold02"]


def test_a_record_copied_under_another_units_key_is_refused_not_counted_twice(tmp_path):
    from timnet_keras.paper.registry import RegistryError, finished_units, read_records

    registry, path = _registry_with_one_record(tmp_path)
    shutil.copy(path, path.replace("fold01", "fold02"))
    assert finished_units(registry) == {"cv/DEMO/timnet/seed46-e1/fold01"}
    with pytest.raises(RegistryError, match="holds the record of unit cv/DEMO/timnet/seed46-e1/fold01, not of .*fold02"):
        read_records(registry)


def test_a_second_grid_driver_on_one_registry_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    import socket

    from timnet_keras.paper.registry import LOCK, RegistryError, driver_lock

    registry = str(tmp_path / "registry")
    with driver_lock(registry):
        with pytest.raises(RegistryError, match=f"another grid driver \\(pid {os.getpid()}\\) is running"):
            with driver_lock(registry):
                pass
    assert not os.path.exists(os.path.join(registry, LOCK))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    open(os.path.join(registry, LOCK), "w").write(f"{socket.gethostname()} {dead.strip()}")
    with driver_lock(registry):  # the owner is gone: taken over
        assert open(os.path.join(registry, LOCK)).read() == f"{socket.gethostname()} {os.getpid()}"


# --- the disk: an OS error is one line naming the path, and nothing is half-written --------------

@pytest.mark.slow
def test_a_full_disk_is_one_error_line_naming_the_path(workspace, monkeypatch, capsys):
    import errno

    from timnet_keras import io

    root, run, flags = workspace
    real = io.write_atomic

    def full(path, write):
        if path.endswith(".json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, write)

    monkeypatch.setattr(io, "write_atomic", full)
    status = cli.main(["--mode", "test", "--data", "DEMO", "--test_path", run, *flags])
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert status == 2 and len(lines) == 1 and lines[0].endswith(": No space left on device"), lines
    assert not glob.glob(str(root / "**" / "*.tmp-*"), recursive=True)


def test_an_unknown_grid_corpus_or_a_file_as_registry_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    base = ["--table", "1", "--split_fold", "2", "--epoch", "1", "--dry-run", "--mfcc_path", str(tmp_path / "MFCC")]
    for corpus, registry, words in (("NOPE", "r", "--corpora: NOPE is neither one of"),
                                    ("DEMO", "afile", "is a file; name a folder")):
        assert cli.reproduce_main([*base, "--corpora", corpus, "--registry", str(tmp_path / registry)]) == 2
        assert words in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine"


def test_figures_of_recordings_with_one_name_never_replace_each_other_or_a_users_file(workspace, capsys):
    root, run, flags = workspace
    first = write_demo_wavs(str(root / "a"), 1)[0]
    second = os.path.join(str(root / "b"), os.path.basename(first))
    os.makedirs(os.path.dirname(second))
    shutil.copy(write_demo_wavs(str(root / "c"), 2)[1], second)
    out = root / "out"
    out.mkdir()
    stem = os.path.splitext(os.path.basename(first))[0]
    (out / f"{stem}_timeline.png").write_text("mine")
    assert cli.main(["--mode", "predict", "--test_path", run, "--wav", first, second, "--window", "0.3", "--hop", "0.3", "--plot",
                     "--output", str(out / "t.csv"), *flags]) == 0
    assert (out / f"{stem}_timeline.png").read_text() == "mine"
    assert sorted(os.listdir(out)) == sorted(["t.csv", f"{stem}_timeline.png", f"{stem}_timeline_2.png", f"{stem}_timeline_3.png"])


def test_overwrite_replaces_an_earlier_predictions_file_of_ours(workspace, capsys):
    root, run, flags = workspace
    wav = write_demo_wavs(str(root / "w"), 1)[0]
    out = str(root / "p.csv")
    assert cli.main(["--mode", "predict", "--test_path", run, "--wav", wav, "--output", out, *flags]) == 0
    assert cli.main(["--mode", "predict", "--test_path", run, "--wav", wav, "--output", out, "--overwrite", *flags]) == 0
    assert open(out).readline().startswith("file,label,")


@pytest.mark.parametrize("call,words", [
    (lambda c: c.predict_signals([np.full(16000, 1e30, np.float32)], 16000), "samples reach 1e+30"),
    (lambda c: c.predict_signals([np.zeros(10, np.float32)], 22050), "shorter than one 2048-sample analysis frame"),
    (lambda c: c.export_bundle("never", "keras", fold=9), "fold 9 was given, but the classifier averages"),
])
def test_the_python_api_refuses_what_would_give_nan_a_meaningless_answer_or_a_wrong_manifest(call, words, tmp_path,
                                                                                             monkeypatch):
    from timnet_keras import MfccPreprocessor, TimnetBackbone, TimnetClassifier

    monkeypatch.chdir(tmp_path)
    classifier = TimnetClassifier(TimnetBackbone(frames=17, num_blocks=2), 4, preprocessor=MfccPreprocessor(8192),
                                  ensemble_size=2)
    with pytest.raises(ValueError) as refused:
        call(classifier)
    assert words in str(refused.value) and not os.path.exists(tmp_path / "never")
