"""Ray: the same predictions as the local executor, units on every node, a dead worker's unit retried.

The tests start a two-node Ray cluster on this machine, addressed as 127.0.0.1 with its own
temporary folder, and stop that cluster's processes when they finish: `ray stop` would
also end any other Ray instance on the machine, a user's running grid among them.
Ray 2.60 still listens on every interface: it turns a node address of 127.0.0.1 into the
machine's network address, and it refuses a multi-node cluster on loopback only
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` binds loopback but then refuses the second node).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from conftest import REPO, tiny_grid_flags

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
# One auth mode for every process of the test cluster: a token left in ~/.ray by an earlier local
# Ray instance would otherwise make the head demand it from the joining node.
RAY_ENV = dict(os.environ, RAY_AUTH_MODE="disabled", KERAS_BACKEND="tensorflow")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args, attempts=3):
    """`ray ...`, retried: a node joining right after `ray start --head` can find the head not yet ready."""
    for attempt in range(attempts):
        done = subprocess.run([RAY, *args], capture_output=True, text=True, timeout=120, env=RAY_ENV)
        if done.returncode == 0:
            return
        time.sleep(3)
    raise AssertionError(f"ray {' '.join(args)} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")


def cluster_processes(temp_dir, port):
    """Pids of the cluster with this temporary folder and head port, and of everything they started.

    Ray's own processes name the folder or the head's address on their command line; the
    agents they start rename themselves (`ray::DashboardAgent`), so descendants are followed.
    """
    parents, named = {}, set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat") as handle:
                parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        if any(temp_dir in arg or arg.endswith(f":{port}") for arg in args):
            named.add(int(entry))
    found, grew = set(named), True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


def stop_cluster(temp_dir, port):
    """Ends that cluster's processes, and only those."""
    for _ in range(3):  # a later pass catches any that were starting
        for pid in cluster_processes(temp_dir, port):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(1)


@pytest.fixture
def two_node_cluster():
    """`ray start --head` and a second node joining it, one CPU each, on 127.0.0.1; stopped afterwards."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = tempfile.mkdtemp(prefix="ray-test-")  # short: Ray's socket paths must fit in 107 characters
    common = ["--num-cpus", "1", "--disable-usage-stats", "--node-ip-address", "127.0.0.1", "--temp-dir", temp_dir]
    try:
        ray_cli("start", "--head", "--port", str(port), "--include-dashboard", "false", *common, attempts=1)
        ray_cli("start", "--address", address, *common)
        yield address
    finally:
        stop_cluster(temp_dir, port)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.jax_pass
def test_ray_on_two_nodes_survives_a_killed_worker_and_gives_the_local_predictions(two_node_cluster, tmp_path,
                                                                                      demo_mfcc):
    """One grid on the cluster: a worker killed mid-grid, every unit once, both nodes used, local predictions."""
    from timnet_keras.paper.registry import finished_units, read_records

    local, remote = str(tmp_path / "local"), str(tmp_path / "ray")
    command = [sys.executable, "-u", os.path.join(REPO, "Code", "reproduce.py"), *tiny_grid_flags(demo_mfcc, remote, eager=True),
               "--executor", "ray", "--address", two_node_cluster, "--workers", "2"]
    driver = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=RAY_ENV)
    lines, pids, killed = [], [], None
    deadline = time.time() + 400
    for line in driver.stdout:
        lines.append(line)
        if line.startswith("worker pid "):
            pids.append(int(line.split()[2]))
        if killed is None and " WAR " in line:  # the first unit is back: kill a worker mid-grid
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        assert time.time() < deadline, "".join(lines)
    output = "".join(lines)
    assert driver.wait() == 0, output
    assert killed and "its worker died; retrying it on a fresh worker" in output
    assert len(finished_units(remote)) == 4 and output.count(" WAR ") == 4  # every unit once

    # The local reference uses one thread, as each Ray worker does: with another thread count TensorFlow
    # sums in another order, and after an epoch of training that alone moves probabilities by ~1e-5.
    one_thread = dict(RAY_ENV, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    subprocess.run([sys.executable, os.path.join(REPO, "Code", "reproduce.py"), *tiny_grid_flags(demo_mfcc, local, eager=True)],
                   env=one_thread, check=True, capture_output=True, timeout=300)
    local_records, ray_records = read_records(local), read_records(remote)
    assert [r.unit for r in local_records] == [r.unit for r in ray_records]
    for a, b in zip(local_records, ray_records):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    assert len({r.machine["ray_node"] for r in ray_records}) == 2
    assert all("ray_node" not in r.machine for r in local_records)
