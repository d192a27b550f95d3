"""Where the grid's units run: in this process one after another, or on a Ray cluster.

Both executors run the grid's units training by training (`grid.trainings`:
a cross-corpus source run is one training scored on each of its targets) and
hand each training's records, together, to the driver's `on_records`, which
alone writes files; workers need no shared file system. On Ray the
features travel once per corpus through the object store, each worker is a
long-lived actor that keeps its compiled models between units, and a unit
whose worker dies is given to a fresh worker.
"""
import collections
import os

from timnet_keras.paper.grid import GridError, UnitRunner, trainings
from timnet_keras.paper.registry import record_from_json

MAX_ATTEMPTS = 3  # per training, on Ray: a training whose worker died this often stops the grid


def run_local(units, features, on_records, jit_compile=True, run_eagerly=False, trainer="sequential"):
    """Trains `units` in this process; `features` maps corpus names to FeatureSets.

    `on_records` receives the records of each training as a list (one record, or a source run's targets).

    With `trainer="batched"` (JAX) the cv units of one cell shape (corpus, variant, epochs, precision), all
    seeds, folds, protocols and normalisations, train as one program; cross-corpus and baseline units stay one
    after another.
    """
    from timnet_keras.paper.baselines import is_baseline

    runner = UnitRunner(jit_compile, run_eagerly)
    if trainer == "batched":  # the baselines are scikit-learn's, one fold at a time
        groups = collections.defaultdict(list)
        for unit in units:
            if unit.kind == "cv" and not is_baseline(unit.variant):
                groups[(unit.corpus, unit.variant, unit.epochs, unit.precision)].append(unit)
        for group in groups.values():
            for record in runner.run_units(group, features[group[0].corpus], trainer="batched"):
                on_records([record])
        units = [unit for unit in units if unit.kind != "cv" or is_baseline(unit.variant)]
    for group in trainings(units):
        on_records(runner.run_training(group, features))


def _undo_ray_niceness():
    """Ray starts its workers at niceness 15: beside any other work (a test run) a unit then got a sliver of a core.

    A grid worker is the work, so it takes the driver's priority back where the system allows it (root, or
    CAP_SYS_NICE); elsewhere it stays as Ray left it.
    """
    try:
        wanted = os.getpriority(os.PRIO_PROCESS, os.getppid())
        # Niceness is per thread on Linux: every thread there is now, and those they start later inherit it.
        threads = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
        for thread in threads:
            os.setpriority(os.PRIO_PROCESS, int(thread), wanted)
    except (OSError, AttributeError, ValueError):
        pass


def _worker_class(ray):
    @ray.remote
    class GridWorker:
        """One long-lived worker: a UnitRunner and the compiled models it has built."""

        def __init__(self, jit_compile, run_eagerly):
            _undo_ray_niceness()
            self.runner = UnitRunner(jit_compile, run_eagerly, node_id=ray.get_runtime_context().get_node_id())

        def where(self):
            return {"pid": os.getpid(), "node": self.runner.node_id, "niceness": os.getpriority(os.PRIO_PROCESS, 0)}

        def run(self, units, target_names, source, *targets):
            """One training's records as JSON; the FeatureSets come as arguments, which Ray resolves."""
            features = {units[0].corpus: source, **dict(zip(target_names, targets))}
            return [record.to_json() for record in self.runner.run_training(units, features)]

    return GridWorker


def connect_ray(address=None, num_cpus=None, log=print):
    """Joins the cluster at `address`, or starts a local Ray instance on this machine's cores (127.0.0.1 only)."""
    try:
        import ray
    except ImportError:
        raise GridError("--executor ray needs Ray: pip install 'timnet-keras[ray]'") from None
    if ray.is_initialized():
        return ray
    if address:
        _check_reachable(address)
    env = {"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    runtime_env = {"env_vars": env}
    try:
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise GridError(f"cannot reach a Ray cluster at {address}: {str(error).splitlines()[0]}; start one with "
                        f"`ray start --head` (README)") from None
    nodes = [n for n in ray.nodes() if n["Alive"]]
    log(f"Ray: {len(nodes)} node(s), {int(sum(n['Resources'].get('CPU', 0) for n in nodes))} CPUs, "
        f"{int(sum(n['Resources'].get('GPU', 0) for n in nodes))} GPUs")
    return ray


def _check_reachable(address, timeout=5.0):
    """Ray itself retries an unreachable address for minutes; a plain TCP connect answers in seconds."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise GridError(f"cannot reach a Ray cluster at {address} ({error}); start one with `ray start --head` "
                        f"(README) or leave out --address to run Ray on this machine alone") from None


def run_ray(units, features, on_records, address=None, workers=None, cpus_per_worker=1, gpus_per_worker=0,
            jit_compile=True, run_eagerly=False, log=print):
    """Trains `units` on Ray actors, one training per actor at a time; its records come back to `on_records` here."""
    ray = connect_ray(address, log=log)
    from ray.exceptions import RayActorError, RayTaskError

    total_cpus = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"])
    count = workers or max(1, int(total_cpus // max(cpus_per_worker, 1e-9)))
    groups = trainings(units)
    count = min(count, len(groups)) or 1
    threads = str(max(1, int(cpus_per_worker)))
    options = dict(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0,
                   runtime_env={"env_vars": {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}})
    Worker = _worker_class(ray)

    def start_worker():
        worker = Worker.options(**options).remote(jit_compile, run_eagerly)
        return worker, ray.get(worker.where.remote())

    needed = sorted({u.corpus for u in units} | {u.target for u in units if u.target})
    refs = {name: ray.put(features[name]) for name in needed}  # once per corpus, not per unit
    idle = []
    for _ in range(count):
        worker, where = start_worker()
        idle.append(worker)
        log(f"worker pid {where['pid']} on node {where['node'][:12]}, niceness {where.get('niceness', '?')}")
    pending, in_flight = collections.deque(groups), {}
    attempts = collections.Counter()
    try:
        while pending or in_flight:
            while idle and pending:
                group, worker = pending.popleft(), idle.pop()
                names = sorted({u.target for u in group if u.target})
                ref = worker.run.remote(group, names, refs[group[0].corpus], *[refs[name] for name in names])
                in_flight[ref] = (group, worker)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                group, worker = in_flight.pop(ref)
                key = group[0].training_key
                try:
                    data = ray.get(ref)
                except RayTaskError as error:  # the training itself failed (a diverged loss, bad data): say which
                    raise GridError(f"{key} failed on its worker: {str(error.cause).splitlines()[0]}") from None
                except RayActorError as error:
                    attempts[key] += 1
                    if attempts[key] >= MAX_ATTEMPTS:
                        raise GridError(f"{key}: its worker died {attempts[key]} times; last: "
                                        f"{str(error).splitlines()[0]}") from None
                    log(f"{key}: its worker died; retrying it on a fresh worker")
                    ray.kill(worker)
                    replacement, where = start_worker()
                    log(f"worker pid {where['pid']} on node {where['node'][:12]}, niceness {where.get('niceness', '?')}")
                    idle.append(replacement)
                    pending.appendleft(group)
                    continue
                idle.append(worker)
                on_records([record_from_json(item) for item in data])
    finally:  # interrupted, or a unit failed: stop the units still training
        for _, worker in in_flight.values():
            ray.kill(worker)  # Ray refuses to force-cancel an actor's task; ending the actor stops it
