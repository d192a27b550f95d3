"""The grid's driver: what is left to run, the features it needs, the records as they arrive, the report.

The driver alone writes files: each finished training's records as they
arrive (the resume point; commit them; a source run's targets together, so a
stop between two of them loses none: `registry.write_records`), and
REPRODUCTION.md, with Table 3's
figure beside the records, from the whole registry when the grid stops,
finished or not.
"""
import os
import time

from timnet_keras.paper.grid import GridError, expand, trainings
from timnet_keras.io import write_text_atomic
from timnet_keras.paper.registry import complete_pending, driver_lock, finished_units, write_records
from timnet_keras.paper.report import VARIANT_NAMES, ablation_comparisons, render

TABLE_3_FIGURE = "table3_paired.png"


def corpus_features(name, mfcc_path, corpora_dir=None):
    """A corpus' cached features; extracted first from `<corpora_dir>/<name>` (or generated, for DEMO) when missing."""
    from timnet_keras.features.extract import cached_or_extracted

    wav_dir = os.path.join(corpora_dir, name) if corpora_dir else None
    return cached_or_extracted(name, mfcc_path, wav_dir if wav_dir and os.path.isdir(wav_dir) else None)


def write_report(registry, report_path):
    """REPRODUCTION.md, and Table 3's figure in the registry (`TABLE_3_FIGURE`) once a variant can be compared."""
    comparisons = ablation_comparisons(registry)
    figure = None
    if comparisons:
        from timnet_keras.runs.plots import plot_ablation_gaps

        path = os.path.join(registry, TABLE_3_FIGURE)
        plot_ablation_gaps(comparisons, path, names=VARIANT_NAMES)
        figure = os.path.relpath(path, os.path.dirname(os.path.abspath(report_path))).replace(os.sep, "/")
    write_text_atomic(report_path, render(registry, figure))
    return report_path


def time_left(unit_seconds, remaining, workers):
    """The rest of a grid for its log: the units' mean time so far, shared by the workers seen so far.

    Units per elapsed second would swing with every finish, since workers side
    by side finish their units in bursts; the units' own times do not.

    Example:
        >>> time_left([900, 900], 30, 2), time_left([300], 1, 1), time_left([30], 1, 1)
        ('3 h 45 min', '5 min', 'under a minute')
    """
    seconds = sum(unit_seconds) / max(len(unit_seconds), 1) * remaining / max(workers, 1)
    hours, minutes = divmod(int(seconds // 60), 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else "under a minute"


def _without_unavailable_baselines(todo, log):
    """The units to run, less the eGeMAPS ones when opensmile is not installed (said once, not an error)."""
    from timnet_keras.paper.baselines import EGEMAPS, INSTALL, feature_kind, is_baseline, opensmile_available

    skipped = [u for u in todo if is_baseline(u.variant) and feature_kind(u.variant) == EGEMAPS]
    if skipped and not opensmile_available():
        log(f"{len(skipped)} eGeMAPS baseline units skipped: opensmile is not installed; {INSTALL}")
        return [u for u in todo if u not in skipped]
    return todo


def _attach_baseline_features(todo, features, mfcc_path, corpora_dir, log):
    """The eGeMAPS functionals of every corpus an eGeMAPS unit needs, from their cache beside the MFCC one."""
    from timnet_keras.paper.baselines import EGEMAPS, egemaps_features, feature_kind, is_baseline

    for name in sorted({u.corpus for u in todo if is_baseline(u.variant) and feature_kind(u.variant) == EGEMAPS}):
        wav_dir = os.path.join(corpora_dir, name) if corpora_dir else None
        features[name].extra[EGEMAPS] = egemaps_features(features[name], mfcc_path, wav_dir, log)


def reproduce(spec, registry, mfcc_path="MFCC", executor="local", corpora_dir=None, report_path="REPRODUCTION.md",
              log=print, **executor_options):
    """Runs every unit of `spec` (a GridSpec) that has no record in `registry`; returns the number trained."""
    with driver_lock(registry):
        return _reproduce(spec, registry, mfcc_path, executor, corpora_dir, report_path, log, executor_options)


def _reproduce(spec, registry, mfcc_path, executor, corpora_dir, report_path, log, executor_options):
    from tqdm import tqdm

    units = expand(spec)
    for key in complete_pending(registry, log):
        log(f"{key}: written from the journal a stopped driver left (trained then, not again)")
    damaged = []
    done = finished_units(registry, damaged)
    for key, reason in damaged:
        log(f"{key}: recomputed: {reason}")
    todo = [u for u in units if u.key not in done]
    groups = len(trainings(todo))
    shared = f" in {groups} trainings" if groups != len(todo) else ""
    log(f"{len(units)} units: {len(units) - len(todo)} finished in {registry}/, {len(todo)} to run{shared} ({executor})")
    if not todo:
        write_report(registry, report_path)
        return 0
    todo = _without_unavailable_baselines(todo, log)
    if not todo:
        write_report(registry, report_path)
        return 0
    needed = sorted({u.corpus for u in todo} | {u.target for u in todo if u.target})
    features = {name: corpus_features(name, mfcc_path, corpora_dir) for name in needed}
    _attach_baseline_features(todo, features, mfcc_path, corpora_dir, log)
    os.makedirs(registry, exist_ok=True)
    bar = tqdm(total=len(todo), unit="unit", disable=None)
    start = time.time()
    written, unit_seconds, workers = [], [], set()

    def on_records(records):
        paths = write_records(registry, records)  # before the log: a record logged is a record kept
        for path, record in zip(paths, records):
            written.append(path)
            bar.update()
            truth, predicted = record.y_true, record.y_pred
            where = record.machine.get("ray_node", "")[:8] or record.machine.get("hostname", "")
            unit_seconds.append(record.seconds)
            workers.add((where, record.machine.get("pid")))
            remaining = len(todo) - len(written)
            left = f", about {time_left(unit_seconds, remaining, len(workers))} left" if remaining else ""
            log(f"{record.unit.key}: WAR {100 * (truth == predicted).mean():.2f} % ({record.seconds} s, {where}); "
                f"{len(written)} of {len(todo)} units{left}")

    try:
        if executor == "local":
            from timnet_keras.paper.executors import run_local

            options = {k: v for k, v in executor_options.items() if k in ("jit_compile", "run_eagerly", "trainer")}
            run_local(todo, features, on_records, **options)
        elif executor == "ray":
            from timnet_keras.paper.executors import run_ray

            if executor_options.get("trainer") == "batched":
                raise GridError("--executor ray trains one unit per worker; --trainer batched trains a cell's units "
                                "together in one process: use --executor local with it, or --trainer sequential")
            run_ray(todo, features, on_records, log=log, **{k: v for k, v in executor_options.items() if k != "trainer"})
        else:
            raise GridError(f"unknown executor {executor!r}; choose local or ray")
    finally:
        bar.close()
        if written:  # a grid that failed before its first unit leaves the report as it was
            write_report(registry, report_path)
            log(f"report: {report_path} ({time.time() - start:.0f} s)")
    return len(todo)
