"""Cross-corpus experiments (the paper's Table 2): train on all of one corpus, test on all of another.

Only the emotions both corpora share are used, at one common length: the
other corpus is centre cropped, or padded with the MFCC of silence in the
frame domain, so corpora cached at different lengths meet without the audio.
"""
import os
from dataclasses import dataclass

import numpy as np

from timnet_keras.config import CROSS_CORPUS_LABELS, CROSS_CORPUS_NAMES, canonical_name
from timnet_keras.training.evaluation import uar, war
from timnet_keras.io import time_stamp, write_json_atomic, write_text_atomic
from timnet_keras.features.preprocessor import frames_for, mfcc_matrix
from timnet_keras.runs.run_config import ModelConfig
from timnet_keras.errors import RunError
from timnet_keras.training.plan import predict_padded
from timnet_keras.training.sequential import SequentialTrainer


def fit_frames(x, frames):
    """Centre pad (with the MFCC of silence) or centre crop a feature batch to `frames`.

    Padded samples are zeros, whose MFCC frame is constant: this is the frame
    domain image of the authors' signal padding.
    """
    n = x.shape[1]
    if n == frames:
        return x
    if n > frames:
        start = (n - frames) // 2
        return x[:, start : start + frames]
    silence = mfcc_matrix(np.zeros(4096, np.float32))[2]
    left = (frames - n) // 2
    right = frames - n - left
    pad = lambda k: np.broadcast_to(silence, (x.shape[0], k, x.shape[2]))
    return np.concatenate([pad(left), x, pad(right)], axis=1).astype(np.float32)


def shared_subset(features, labels, frames):
    keep = [i for i, k in enumerate(features.classes) if features.labels[k] in labels]
    classes = [labels.index(features.labels[features.classes[i]]) for i in keep]
    return fit_frames(features.x[keep], frames), np.eye(len(labels), dtype=np.float32)[classes]


@dataclass
class CorpusPair:
    """A source and a target reduced to their shared emotions at one length, and the model that fits them."""

    source: str
    target: str
    labels: list
    frames: int
    mean_signal_length: int
    model_config: ModelConfig
    x_source: np.ndarray
    y_source: np.ndarray
    x_target: np.ndarray
    y_target: np.ndarray


def corpus_pair(source, target, model_config, mean_signal_length, source_name="", target_name=""):
    """The `CorpusPair` of two FeatureSets; refuses pairs sharing fewer than two emotions."""
    labels = [l for l in CROSS_CORPUS_LABELS if l in source.labels and l in target.labels]
    if len(labels) < 2:
        raise RunError(f"the corpora share fewer than two of {', '.join(CROSS_CORPUS_LABELS)}")
    frames = frames_for(mean_signal_length)
    x_source, y_source = shared_subset(source, labels, frames)
    x_target, y_target = shared_subset(target, labels, frames)
    config = ModelConfig.from_dict({**model_config.backbone_kwargs(), "frames": frames, "n_mfcc": source.x.shape[2],
                                    "num_classes": len(labels)})
    return CorpusPair(source_name, target_name, labels, frames, int(mean_signal_length), config, x_source, y_source,
                      x_target, y_target)


def train_on_targets(trainer, pairs, desc="source"):
    """Trains `trainer` once on the source that `pairs` share; returns [(history, target probabilities)], one per pair.

    The one place a cross-corpus model is trained: the cross mode and the reproduction grid both call it.
    Pairs of one source at one length and with the same shared emotions train the very same model, so the
    paper's "trained on all of the source" needs it once per source; each target is scored by it. A
    history holds the training's own curves and its own target's test curve (`test_*` keys).
    """
    first = pairs[0]
    for pair in pairs[1:]:
        if (pair.labels, pair.model_config) != (first.labels, first.model_config) \
                or not np.array_equal(pair.x_source, first.x_source) or not np.array_equal(pair.y_source, first.y_source):
            raise RunError(f"{first.source} -> {first.target} and {pair.source} -> {pair.target} train different source "
                           f"models (shared emotions, length or source data differ); train them apart")
    curves = {str(k): (pair.x_target, pair.y_target) for k, pair in enumerate(pairs)}
    history, _ = trainer.train_fold(0, first.x_source, first.y_source, desc=desc, curves=curves)
    shared = {key: values for key, values in history.items() if "/" not in key}
    results = []
    for k, pair in enumerate(pairs):
        own = {key.split("/", 1)[1]: values for key, values in history.items() if key.startswith(f"{k}/")}
        results.append(({**shared, **own}, predict_padded(trainer.model, pair.x_target, trainer.training.batch_size)))
    return results


def train_on_pair(trainer, pair, desc="source"):
    """`train_on_targets` of one pair: (history, target probabilities)."""
    return train_on_targets(trainer, [pair], desc)[0]


def cross_corpus(source, target, model_config, training, seeds, mean_signal_length, jit_compile=True, log=print):
    """Train on all of `source`, test on all of `target`, on their shared emotions; one result per seed."""
    pair = corpus_pair(source, target, model_config, mean_signal_length)
    truth = np.argmax(pair.y_target, axis=1)
    results = []
    for seed in seeds:
        trainer = SequentialTrainer(pair.model_config, training, seed, "last", jit_compile)
        _, probabilities = train_on_pair(trainer, pair, desc=f"seed {seed}")
        predictions = np.argmax(probabilities, axis=1)
        results.append({"seed": seed, "uar": uar(truth, predictions), "war": war(truth, predictions)})
        log(f"seed {seed}: UAR {results[-1]['uar']:.2f} %  WAR {results[-1]['war']:.2f} %")
    return {"labels": pair.labels, "mean_signal_length": pair.mean_signal_length, "frames": pair.frames,
            "n_source": int(len(pair.x_source)), "n_target": int(len(pair.x_target)), "runs": results}


def cross_corpus_table(pairs):
    """Table 2 / A4 layout: source -> target, UAR and WAR mean +- std over runs."""
    lines = ["| source | target | UAR % | WAR % | runs | shared emotions |", "| --- | --- | --- | --- | --- | --- |"]
    for (source, target), result in pairs.items():
        u = [r["uar"] for r in result["runs"]]
        w = [r["war"] for r in result["runs"]]
        lines.append(f"| {source} | {target} | {np.mean(u):.2f} ± {np.std(u):.2f} | {np.mean(w):.2f} ± {np.std(w):.2f} | {len(u)} | {', '.join(result['labels'])} |")
    return "\n".join(lines) + "\n"


def cross_corpus_pairs(source, target):
    """[(source, target)]: one pair, or every ordered pair of the paper's five corpora for 'all'."""
    names = CROSS_CORPUS_NAMES
    if source.lower() == "all":
        return [(s, t) for s in names for t in names if s != t]
    return [(canonical_name(source) or source, canonical_name(target) or target)]


def write_cross_results(result_path, source, target, results, epochs, seeds):
    """`Results/cross_<source>_<target>_<time>/` with table.md and results.json; returns (folder, table)."""
    out = os.path.join(result_path, f"cross_{source}_{target or 'all'}_{time_stamp()}")
    os.makedirs(out, exist_ok=True)
    table = cross_corpus_table(results)
    write_text_atomic(os.path.join(out, "table.md"), table)
    write_json_atomic(os.path.join(out, "results.json"),
                      {"epochs": epochs, "seeds": seeds, "pairs": [{"source": s, "target": t, **r} for (s, t), r in results.items()]})
    return out, table
