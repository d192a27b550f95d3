"""The grid's driver: records as units finish, resume without recomputation, a report generated from the records."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, tiny_grid_flags
from timnet_keras.cli import reproduce_main
from timnet_keras.registry import finished_units, read_records, record_path

pytestmark = pytest.mark.slow
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


@pytest.mark.jax_pass
def test_a_killed_driver_resumes_without_recomputing_finished_units(tmp_path, demo_mfcc):
    registry = str(tmp_path / "reproduction")
    command = [sys.executable, SCRIPT, *tiny_grid_flags(demo_mfcc, registry)]
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
