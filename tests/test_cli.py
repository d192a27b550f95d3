"""The command lines end to end on a tiny corpus: train, test, predict, resume, labels, errors."""
import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import EMODB_46, needs_emodb_46
from timnet_keras import cli
from timnet_keras.features.cache import save_feature_cache
from timnet_keras.features.demo import write_demo_wavs
from timnet_keras.features.extract import demo_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--epoch", "2", "--dilation_size", "2", "--split_fold", "3", "--batch_size", "8", "--no-xla"]


@pytest.fixture
def workspace(tmp_path):
    save_feature_cache(str(tmp_path / "MFCC" / "DEMO.npz"), demo_features(mean_signal_length=8192, n_utterances=24))
    paths = ["--mfcc_path", str(tmp_path / "MFCC"), "--model_path", str(tmp_path / "Models"), "--result_path", str(tmp_path / "Results")]
    os.makedirs(tmp_path / "Models")
    return tmp_path, paths


def run_dirs(root):
    return sorted(glob.glob(str(root / "Models" / "DEMO_*")))


@pytest.mark.slow
def test_train_then_test_then_predict(workspace, capsys, tmp_path):
    root, paths = workspace
    assert cli.main(["--mode", "train", "--data", "DEMO", *TINY, *paths]) == 0
    (run,) = run_dirs(root)
    assert sorted(os.listdir(run)) == sorted(["run_config.json"] + [f"3-fold_weights_best_{i}.hdf5" for i in (1, 2, 3)]
                                             + [f"fold_{i}.json" for i in (1, 2, 3)])
    summary = json.load(open(glob.glob(str(root / "Results" / "DEMO_*" / "summary.json"))[0]))
    assert summary["selection"] == "last" and summary["test_selected"] is False
    assert set(summary["pooled"]) >= {"war", "uar"} and len(summary["folds"]) == 3
    assert np.array(summary["confusion_matrix"]).sum() == 24
    epoch_seconds = json.load(open(os.path.join(run, "fold_1.json")))["history"]["seconds"]
    assert len(epoch_seconds) == 2 and all(s > 0 for s in epoch_seconds)  # what bench_full_run scales to 500 epochs

    assert cli.main(["--mode", "test", "--data", "DEMO", "--tsne", *paths]) == 0
    (tested,) = glob.glob(str(root / "Results" / "DEMO_*_test_*"))
    assert {"summary.json", "classification_report.csv", "confusion_matrix.png", "tsne.png"} <= set(os.listdir(tested))
    retested = json.load(open(os.path.join(tested, "summary.json")))
    # same folds, same weights: the same accuracies; the probability-based scores (NLL, ECE, Brier) up to the
    # records' 6-decimal rounding of the training run's probabilities
    assert retested["pooled"] == pytest.approx(summary["pooled"], abs=1e-4)
    assert {k: retested["pooled"][k] for k in ("war", "uar")} == {k: summary["pooled"][k] for k in ("war", "uar")}

    wavs = write_demo_wavs(str(root / "wavs"), n_utterances=4)
    (root / "broken.wav").write_bytes(b"")
    out = str(root / "pred.json")
    assert cli.main(["--mode", "predict", "--data", "DEMO", "--wav", *wavs, str(root / "broken.wav"), "--output", out, *paths]) == 0
    captured = capsys.readouterr()
    assert "skipped:" in captured.err and "broken.wav" in captured.err
    rows = json.load(open(out))
    assert len(rows) == 4 and all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in rows)

    # predict is a thin call of the classifier: the same probabilities, and no feature cache needed
    from timnet_keras.model.classifier import TimnetClassifier

    os.remove(root / "MFCC" / "DEMO.npz")
    assert cli.main(["--mode", "predict", "--data", "DEMO", "--wav", *wavs, "--output", out, "--overwrite", *paths]) == 0
    again = json.load(open(out))  # --overwrite replaced the predictions file of ours
    expected = TimnetClassifier.from_run(run).predict_files(wavs)
    labels = list(TimnetClassifier.from_run(run).labels)
    for row, p in zip(again, expected):
        assert row["label"] == labels[int(np.argmax(p))]
        assert [row["probabilities"][k] for k in labels] == pytest.approx(p, abs=1e-4)


@pytest.mark.slow
def test_best_test_runs_are_labelled_test_selected(workspace, capsys):
    root, paths = workspace
    assert cli.main(["--mode", "train", "--data", "DEMO", "--select", "best-test", *TINY, *paths]) == 0
    assert "test-selected" in capsys.readouterr().out
    summary = json.load(open(glob.glob(str(root / "Results" / "DEMO_*" / "summary.json"))[0]))
    assert summary["test_selected"] is True and "TEST-SELECTED" in summary["selection_note"]


@pytest.mark.jax_pass
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_backend_jax_trains_tests_and_predicts_without_loading_tensorflow(workspace):
    """The JAX route is the low-memory one only if TensorFlow (700 MB resident) stays out of the process;
    its compiled train step goes to the persistent cache, which the next run loads instead of compiling."""
    root, paths = workspace
    wavs = write_demo_wavs(str(root / "wavs"), n_utterances=2)
    script = (
        "import json, sys; from timnet_keras import cli\n"
        "argv, paths, wavs = json.loads(sys.argv[1])\n"
        "assert cli.main(['--mode', 'train', '--backend', 'jax', *argv, *paths]) == 0\n"
        "assert cli.main(['--mode', 'test', '--backend', 'jax', '--data', 'DEMO', *paths]) == 0\n"
        "assert cli.main(['--mode', 'predict', '--backend', 'jax', '--data', 'DEMO', '--wav', *wavs, *paths]) == 0\n"
        "import keras; assert keras.backend.backend() == 'jax'\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TIMNET_JAX_CACHE"] = str(root / "jax-cache")
    tiny = ["--data", "DEMO", "--epoch", "2", "--dilation_size", "2", "--split_fold", "3", "--batch_size", "8"]
    done = subprocess.run([sys.executable, "-c", script, json.dumps([tiny, paths, wavs])], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tensorflow loaded: False" in done.stdout
    assert len(run_dirs(root)) == 1 and len(glob.glob(str(root / "Results" / "DEMO_*" / "summary.json"))) == 2
    assert os.listdir(root / "jax-cache"), "no compiled program was kept in $TIMNET_JAX_CACHE"


def test_backend_flag_refuses_to_switch_an_already_imported_keras(workspace, capsys):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    if importlib.util.find_spec(other) is None:
        pytest.skip(f"{other} not installed")
    root, paths = workspace
    assert cli.main(["--mode", "train", "--data", "DEMO", "--backend", other, *TINY, *paths]) == 2
    assert f"KERAS_BACKEND={other}" in capsys.readouterr().err
    assert os.environ.get("KERAS_BACKEND") != other  # the refusal leaves the environment (and child processes) alone


@pytest.mark.slow
def test_unknown_data_name_lists_the_known_ones(workspace, capsys):
    _, paths = workspace
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--mode", "train", "--data", "NOPE", *paths])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: unknown --data") and "EMODB" in err


def test_missing_cache_says_which_extract_command_to_run(tmp_path, capsys):
    assert cli.main(["--mode", "train", "--data", "EMODB", "--mfcc_path", str(tmp_path)]) == 2
    assert "python Code/extract_feature.py --data_name EMODB --wav_dir PATH" in capsys.readouterr().err


def test_an_empty_run_folder_is_a_one_line_error(workspace, capsys):
    root, paths = workspace
    empty = root / "Models" / "empty"
    empty.mkdir()
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", str(empty), *paths]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "no fold weights" in err and "\n" not in err


@needs_emodb_46
@pytest.mark.shared
def test_a_fold_count_that_does_not_match_the_files_is_refused(workspace, capsys, tmp_path):
    root, paths = workspace
    partial = root / "partial"
    partial.mkdir()
    for i in (1, 2):
        os.symlink(os.path.join(EMODB_46, f"10-fold_weights_best_{i}.hdf5"), partial / f"10-fold_weights_best_{i}.hdf5")
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", str(partial), *paths]) == 2
    assert "fold count does not match" in capsys.readouterr().err


@needs_emodb_46
@pytest.mark.shared
def test_weights_that_do_not_fit_the_data_are_a_one_line_error(workspace, capsys, tmp_path):
    _, paths = workspace  # DEMO has 4 classes and 87... frames; the EMODB files have 7 classes
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", EMODB_46, "--random_seed", "46", *paths]) == 2
    assert "holds a EMODB model but --data is DEMO" in capsys.readouterr().err  # the folder's name says its corpus
    renamed = tmp_path / "weights"  # a name that says nothing: the weights themselves do not fit
    os.symlink(EMODB_46, renamed)
    assert cli.main(["--mode", "test", "--data", "DEMO", "--test_path", str(renamed), "--random_seed", "46", *paths]) == 2
    err = capsys.readouterr().err  # the frames differ before the classes do
    assert "DEMO cache has 17 frames per utterance" in err and "was trained on 87" in err


def test_an_output_in_a_missing_folder_names_the_users_path(workspace, capsys, tmp_path):
    _, paths = workspace
    wavs = write_demo_wavs(str(tmp_path / "wavs"), n_utterances=1)
    target = str(tmp_path / "nowhere" / "x.csv")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--mode", "predict", "--data", "DEMO", "--wav", *wavs, "--output", target, *paths])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("error: --output") and str(tmp_path / "nowhere") in err and "tmp-" not in err


def test_run_eagerly_trains_the_folds_without_a_graph(workspace, monkeypatch):
    # The debugging route for one's own layers: every fold's model runs eagerly, and the run still completes.
    from timnet_keras.training import sequential as training

    eager = []
    built = training.SequentialTrainer.compiled_model

    def spy(trainer):
        model = built(trainer)
        eager.append(model.run_eagerly)
        return model

    monkeypatch.setattr(training.SequentialTrainer, "compiled_model", spy)
    root, paths = workspace
    tiny = ["--epoch", "1", "--dilation_size", "2", "--split_fold", "2", "--batch_size", "8"]
    assert cli.main(["--mode", "train", "--data", "DEMO", *tiny, "--run-eagerly", *paths]) == 0
    assert eager and all(eager)
    assert len(glob.glob(str(root / "Results" / "DEMO_*" / "summary.json"))) == 1


def test_run_eagerly_refuses_the_batched_trainer(workspace, capsys):
    root, paths = workspace
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--mode", "train", "--data", "DEMO", "--run-eagerly", "--trainer", "batched", *paths])
    assert stopped.value.code != 0
    assert "error: --run-eagerly" in capsys.readouterr().err and not run_dirs(root)
