"""The one trainer interface: the train mode, the cross-corpus mode and the grid all train through it.

A `Trainer` takes fold jobs (`plan.fold_job`) over a FeatureSet and returns a
`FoldRecord` per job; `choose_trainer` picks the sequential one (`sequential`)
or the batched one (`batched`, JAX only) from `--trainer`. Every caller
builds its jobs with the plan, so a grid unit and a fold of `--mode train`
with the same seed and fold are the same training (tests/test_trainers.py).
"""
from typing import Protocol

import keras

from timnet_keras.config import TRAINERS
from timnet_keras.errors import RunError


class Trainer(Protocol):
    model_config: object
    training: object
    selection: str
    model: object

    def train(self, features, jobs, on_fold=None, checkpoint=None, desc=None, log=None):
        """Trains `jobs`; calls `on_fold(model, record)` per finished fold; returns the FoldRecords in job order."""


def resolve_trainer(choice="auto"):
    """The trainer `--trainer choice` means here: "auto" is "batched" on the JAX backend with a GPU, else "sequential".

    On the 2-core CPU the sequential trainer is as fast or faster (BENCHMARKS.md, batched vs
    sequential); on a GPU the batched one removes the per-step Python and host sync.

    Example:
        >>> resolve_trainer("sequential")
        'sequential'
    """
    if choice not in TRAINERS:
        raise RunError(f"unknown trainer {choice!r}; choose one of {', '.join(TRAINERS)}")
    if choice == "batched":
        _require_jax()
        return choice
    if choice != "auto" or keras.backend.backend() != "jax":
        return "sequential" if choice == "auto" else choice
    import jax

    return "batched" if any(d.platform == "gpu" for d in jax.devices()) else "sequential"


def _require_jax():
    if keras.backend.backend() != "jax":
        raise RunError("the batched trainer needs the JAX backend: add --backend jax, or use --trainer sequential")


def choose_trainer(choice, model_config, training, seed, selection="last", jit_compile=True, run_eagerly=False):
    """The Trainer `--trainer choice` gives for one model shape and training settings.

    `jit_compile=False` (`--no-xla`) and `run_eagerly` apply to the sequential trainer; the
    batched one is a single compiled JAX program and refuses them rather than ignore them.
    """
    name = resolve_trainer(choice)
    if name == "batched":
        if run_eagerly or not jit_compile:
            raise RunError("--trainer batched is one compiled JAX program: it has no --no-xla or --run-eagerly; "
                           "use --trainer sequential for them")
        from timnet_keras.training.batched import BatchedTrainer

        return BatchedTrainer(model_config, training, selection)
    from timnet_keras.training.sequential import SequentialTrainer

    return SequentialTrainer(model_config, training, seed, selection, jit_compile, run_eagerly)
