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

from conftest import REPO
from timnet_keras import cli
from timnet_keras.cache import save_feature_cache
from timnet_keras.demo import write_demo_wavs
from timnet_keras.extract import demo_features

TINY = ["--epoch", "8", "--dilation_size", "2", "--split_fold", "4", "--batch_size", "8", "--no-xla"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with a DEMO cache and one finished 4-fold run, made once (also the uninterrupted reference)."""
    root = tmp_path_factory.mktemp("trained")
    save_feature_cache(str(root / "MFCC" / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=24))
    flags = ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]
    assert cli.main(["--mode", "train", "--data", "DEMO", *TINY, *flags]) == 0
    return root


@pytest.fixture
def workspace(trained, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(trained, root)
    (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
    flags = ["--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results")]
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
    from timnet_keras.cache import load_feature_cache

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

def _train_command(root, *extra):
    return [sys.executable, os.path.join(REPO, "Code", "main.py"), "--mode", "train", "--data", "DEMO", *TINY,
            "--mfcc_path", str(root / "MFCC"), "--model_path", str(root / "Models"), "--result_path", str(root / "Results"), *extra]


def _probabilities(run):
    import json

    return {k: json.load(open(os.path.join(run, f"fold_{k}.json")))["probabilities"] for k in range(1, 5)}


def _finished_files(run):
    return {name: open(os.path.join(run, name), "rb").read() for name in os.listdir(run) if name.startswith(("fold_", "4-fold"))}


@pytest.mark.slow
def test_a_run_killed_mid_fold_by_any_signal_resumes_to_the_uninterrupted_result(trained, tmp_path):
    """SIGTERM in fold 2 (a scheduler's stop; Ctrl-C's SIGINT takes the same handler), SIGKILL in fold 3 of the
    resumed run; then it finishes."""
    root = tmp_path
    shutil.copytree(trained / "MFCC", root / "MFCC")
    extra, previous = [], {}
    for fold, signal_name in ((2, "SIGTERM"), (3, "SIGKILL")):
        process = subprocess.Popen(_train_command(root, *extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 300
        while not glob.glob(str(root / "Models" / "DEMO_*" / f"fold_{fold - 1}.json")) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # into fold `fold`
        process.send_signal(getattr(signal, signal_name))
        stderr = process.communicate(timeout=120)[1]
        (run,) = glob.glob(str(root / "Models" / "DEMO_*"))
        if signal_name != "SIGKILL":
            assert process.returncode in (130, 143) and b"--resume" in stderr, stderr[-2000:]
        finished = _finished_files(run)
        assert f"fold_{fold - 1}.json" in finished and f"fold_{fold}.json" not in finished, (signal_name, sorted(finished))
        extra = ["--resume", run]
        assert all(previous[name] == finished[name] for name in previous), f"a finished fold changed after {signal_name}"
        previous = finished
    subprocess.run(_train_command(root, *extra), check=True, capture_output=True, timeout=600)
    assert all(open(os.path.join(run, name), "rb").read() == content for name, content in previous.items())
    assert not [name for name in os.listdir(run) if ".tmp-" in name]
    (reference,) = glob.glob(str(trained / "Models" / "DEMO_*"))
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
