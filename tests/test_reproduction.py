"""The grid's driver: records as units finish, resume without recomputation, a report generated from the records."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import CHEAP_EAGER, REPO, tiny_grid_flags, count_trainings
from timnet_keras.cli import reproduce_main
from timnet_keras.paper.registry import finished_units, read_records, record_path

# Backend-agnostic flows: make test runs them once, in its JAX pass, where their tiny trainings are cheapest (conftest).
pytestmark = [pytest.mark.slow, pytest.mark.jax_pass]
SCRIPT = os.path.join(REPO, "Code", "reproduce.py")


def test_a_tiny_grid_leaves_one_record_per_unit_and_a_report(tmp_path, demo_mfcc, capsys):
    registry = str(tmp_path / "reproduction")
    assert reproduce_main(tiny_grid_flags(demo_mfcc, registry)) == 0
    assert finished_units(registry) == {f"cv/DEMO/timnet/seed{s}-e1/fold0{k}" for s in (46, 47) for k in (1, 2)}
    progress = capsys.readouterr().out
    assert "1 of 4 units, about" in progress and any(line.endswith("; 4 of 4 units") for line in progress.splitlines())
    records = read_records(registry)
    assert all(r.backend and r.versions["keras"] and r.machine["hostname"] and len(r.history["loss"]) == 1
               for r in records)
    report = open(os.path.join(registry, "R.md")).read()
    assert "| DEMO, TIM-Net | 46 | 1 | 2/2 folds |" in report  # not a paper setting: listed apart
    demo = next(line for line in report.splitlines() if line.startswith("| DEMO, TIM-Net | 46 |"))
    assert " / " in demo.split(" | ")[-1] and "no test curve" not in demo  # new records carry the test curve
    assert "| EMODB | 89.19 / 90.28 | — | — | — | 95.17 / 95.70 | — | — | 0 | not run yet |" in report  # never left out

    assert reproduce_main(tiny_grid_flags(demo_mfcc, registry)) == 0
    assert "4 finished in" in capsys.readouterr().out and len(read_records(registry)) == 4


def test_a_killed_driver_resumes_without_recomputing_finished_units(tmp_path, demo_mfcc):
    registry = str(tmp_path / "reproduction")
    command = [sys.executable, SCRIPT, *tiny_grid_flags(demo_mfcc, registry, eager=True)]  # TensorFlow in the child
    env = dict(os.environ, KERAS_BACKEND="tensorflow")  # the default backend's driver, in either pass of make test
    driver = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    while not finished_units(registry) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = {key: os.stat(record_path(registry, r.unit)).st_mtime_ns for r in read_records(registry)
              for key in [r.unit.key]}
    assert 1 <= len(before) < 4
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    assert f"{len(before)} finished in" in again.stdout
    assert len(finished_units(registry)) == 4
    after = {r.unit.key: os.stat(record_path(registry, r.unit)).st_mtime_ns for r in read_records(registry)}
    assert all(after[key] == stamp for key, stamp in before.items())


@pytest.mark.parametrize("flags, message", [
    (["--table", "5"], "--table '5': choose 1, 2, 3"),
    (["--corpora", "NOPE"], "--corpora: NOPE is neither one of"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
])
def test_bad_grid_requests_are_one_line_errors(tmp_path, demo_mfcc, flags, message, capsys):
    report = tmp_path / "REPRODUCTION.md"
    report.write_text("the report as it was")
    base = ["--corpora", "DEMO", "--epoch", "1", "--mfcc_path", demo_mfcc, "--registry", str(tmp_path / "r"),
            "--report", str(report)]
    assert reproduce_main(base + flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not os.path.exists(tmp_path / "r" / "records")
    assert report.read_text() == "the report as it was"


CROSS = ("SRCA", "SRCB", "SRCC")


@pytest.fixture(scope="module")
def cross_mfcc(tmp_path_factory):
    """Three small generated corpora with the emotions the cross-corpus pairs share (angry, happy, neutral, sad)."""
    from timnet_keras.features.cache import cache_path, save_feature_cache
    from timnet_keras.features.extract import demo_features

    folder = tmp_path_factory.mktemp("cross-mfcc")
    for seed, (name, length) in enumerate(zip(CROSS, (8192, 6144, 12288)), start=1):
        save_feature_cache(cache_path(str(folder), name), demo_features(mean_signal_length=length, n_utterances=24,
                                                                        seed=seed))
    return str(folder)


def cross_flags(mfcc, registry):
    return ["--table", "2", "--corpora", ",".join(CROSS), "--epoch", "1", *(["--run-eagerly"] if CHEAP_EAGER else []), "--mfcc_path", mfcc,
            "--registry", registry, "--report", os.path.join(registry, "R.md")]


def cross_key(source, target):
    return f"cross/{source}-{target}/timnet/seed46-e1"


def test_table_2_trains_each_source_once_and_leaves_a_record_per_pair(tmp_path, cross_mfcc, monkeypatch, capsys):
    registry = str(tmp_path / "reproduction")
    calls = count_trainings(monkeypatch)
    assert reproduce_main(cross_flags(cross_mfcc, registry)) == 0
    assert sorted(calls) == [f"cross/{s}/timnet/seed46-e1" for s in CROSS]  # three trainings, not six
    assert finished_units(registry) == {cross_key(s, t) for s in CROSS for t in CROSS if s != t}
    assert "6 to run in 3 trainings (local)" in capsys.readouterr().out
    records = {r.unit.key: r for r in read_records(registry)}
    a_b, a_c = records[cross_key("SRCA", "SRCB")], records[cross_key("SRCA", "SRCC")]
    assert a_b.history["loss"] == a_c.history["loss"] and a_b.training["targets"] == ["SRCB", "SRCC"]
    assert len(a_b.y_true) == len(a_b.test_indices) == len(a_b.probabilities) == 24 and "test_accuracy" in a_b.history
    assert "| SRCA → SRCB, TIM-Net | 46 | 1 | — |" in open(os.path.join(registry, "R.md")).read()  # not 500 epochs

    assert reproduce_main(cross_flags(cross_mfcc, registry)) == 0
    assert len(calls) == 3 and "6 finished in" in capsys.readouterr().out


def test_a_driver_stopped_between_two_targets_completes_the_second_without_training(tmp_path, cross_mfcc, monkeypatch,
                                                                                     capsys):
    import timnet_keras.paper.registry as registry_module
    from timnet_keras.io import read_json
    from timnet_keras.paper.registry import pending_path

    registry = str(tmp_path / "reproduction")
    write_record, writes = registry_module.write_record, []

    def stopped_at_the_second_record(*args):  # Ctrl-C between the first source's two records
        writes.append(args)
        if len(writes) == 2:
            raise KeyboardInterrupt
        return write_record(*args)

    monkeypatch.setattr(registry_module, "write_record", stopped_at_the_second_record)
    calls = count_trainings(monkeypatch)
    assert reproduce_main(cross_flags(cross_mfcc, registry)) == 130
    assert calls == ["cross/SRCA/timnet/seed46-e1"] and finished_units(registry) == {cross_key("SRCA", "SRCB")}
    journal = pending_path(registry, "cross/SRCA/timnet/seed46-e1")
    kept = read_json(journal)["records"][1]
    capsys.readouterr()
    assert reproduce_main(cross_flags(cross_mfcc, registry) + ["--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[:3] == [f"{status}  {cross_key('SRCA', t)}  (one training: cross/SRCA/timnet/seed46-e1)"
                          for status, t in (("done", "SRCB"), ("pending", "SRCC"))] + \
        [f"todo  {cross_key('SRCB', 'SRCA')}  (one training: cross/SRCB/timnet/seed46-e1)"]

    monkeypatch.setattr(registry_module, "write_record", write_record)
    stamp = os.stat(record_path(registry, read_records(registry)[0].unit)).st_mtime_ns
    assert reproduce_main(cross_flags(cross_mfcc, registry)) == 0
    assert calls[1:] == ["cross/SRCB/timnet/seed46-e1", "cross/SRCC/timnet/seed46-e1"]  # SRCA not trained again
    assert f"{cross_key('SRCA', 'SRCC')}: written from the journal" in capsys.readouterr().out
    assert len(finished_units(registry)) == 6 and not os.path.exists(journal)
    records = {r.unit.key: r for r in read_records(registry)}
    assert records[cross_key("SRCA", "SRCC")].to_json()["probabilities"] == kept["probabilities"]
    assert os.stat(record_path(registry, records[cross_key("SRCA", "SRCB")].unit)).st_mtime_ns == stamp

    # A record lost with no journal: its source is trained again for that target alone, its sibling left as it is.
    os.remove(record_path(registry, records[cross_key("SRCB", "SRCC")].unit))
    sibling = os.stat(record_path(registry, records[cross_key("SRCB", "SRCA")].unit)).st_mtime_ns
    assert reproduce_main(cross_flags(cross_mfcc, registry)) == 0
    assert calls[3:] == ["cross/SRCB/timnet/seed46-e1"] and len(finished_units(registry)) == 6
    assert os.stat(record_path(registry, records[cross_key("SRCB", "SRCA")].unit)).st_mtime_ns == sibling
    assert {r.unit.key: r for r in read_records(registry)}[cross_key("SRCB", "SRCC")].training["targets"] == ["SRCC"]
