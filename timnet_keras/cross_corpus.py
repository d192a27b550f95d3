"""Cross-corpus experiments (the paper's Table 2): train on all of one corpus, test on all of another.

Only the emotions both corpora share are used, at one common length: the
other corpus is centre cropped, or padded with the MFCC of silence in the
frame domain, so corpora cached at different lengths meet without the audio.
"""
import os

import numpy as np

from .config import CROSS_CORPUS_LABELS, CROSS_CORPUS_NAMES, canonical_name
from .evaluation import uar, war
from .io import time_stamp, write_json_atomic, write_text_atomic
from .preprocessor import frames_for, mfcc_matrix
from .run_config import ModelConfig
from .training import FoldTrainer, RunError


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


def cross_corpus(source, target, model_config, training, seeds, mean_signal_length, jit_compile=True, log=print):
    """Train on all of `source`, test on all of `target`, on their shared emotions; one result per seed."""
    labels = [l for l in CROSS_CORPUS_LABELS if l in source.labels and l in target.labels]
    if len(labels) < 2:
        raise RunError(f"the corpora share fewer than two of {', '.join(CROSS_CORPUS_LABELS)}")
    frames = frames_for(mean_signal_length)
    x_source, y_source = shared_subset(source, labels, frames)
    x_target, y_target = shared_subset(target, labels, frames)
    config = ModelConfig.from_dict({**model_config.backbone_kwargs(), "frames": frames, "n_mfcc": source.x.shape[2],
                                    "num_classes": len(labels)})
    results = []
    for seed in seeds:
        trainer = FoldTrainer(config, training, seed, "last", jit_compile)
        trainer.train_fold(0, x_source, y_source, desc=f"seed {seed}")
        predictions = np.argmax(trainer.model.predict(x_target, batch_size=64, verbose=0), axis=1)
        truth = np.argmax(y_target, axis=1)
        results.append({"seed": seed, "uar": uar(truth, predictions), "war": war(truth, predictions)})
        log(f"seed {seed}: UAR {results[-1]['uar']:.2f} %  WAR {results[-1]['war']:.2f} %")
    return {"labels": labels, "mean_signal_length": int(mean_signal_length), "frames": frames,
            "n_source": int(len(x_source)), "n_target": int(len(x_target)), "runs": results}


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
