"""Typed records of a run: what model, what training, what protocol; JSON both ways.

A `RunConfig` crosses the package (the trainer writes it, test, predict and
the classifier read it), so it is a dataclass with a schema version rather
than a dict. Files written before the schema existed (version 0: keys
`input_shape`, `dilations`) are read and converted.
"""
import dataclasses
from dataclasses import dataclass, field

from timnet_keras.config import DEFAULT_NORMALISE, DEFAULT_NUM_BLOCKS, N_MFCC, TRAINING_DEFAULTS
from timnet_keras.schema import checked_fields

SCHEMA_VERSION = 1
SELECTION_NOTES = {
    "last": "last-epoch weights",
    "best-val": "epoch selected on a validation split of each training part",
    "best-test": "TEST-SELECTED: each fold's epoch chosen on its own test fold (optimistic)",
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything `TimnetBackbone` and the classifier head are built from.

    Example:
        >>> ModelConfig(frames=188, num_classes=7).backbone_kwargs()["num_blocks"]
        8
    """

    frames: int | None
    num_classes: int
    n_mfcc: int = N_MFCC
    num_blocks: int = DEFAULT_NUM_BLOCKS
    filters: int = TRAINING_DEFAULTS["filter_size"]
    kernel_size: int = TRAINING_DEFAULTS["kernel_size"]
    stacks: int = TRAINING_DEFAULTS["stack_size"]
    dropout_rate: float = TRAINING_DEFAULTS["dropout"]
    activation: str = TRAINING_DEFAULTS["activation"]
    variant: str = "timnet"

    def backbone_kwargs(self):
        config = dataclasses.asdict(self)
        config.pop("num_classes")
        return config

    @classmethod
    def from_dict(cls, data, where="model"):
        """From our JSON, including the version-0 keys (`input_shape`, `dilations`); other fields checked by name and type."""
        data = dict(data)
        if "input_shape" in data:
            data["frames"], data["n_mfcc"] = data.pop("input_shape")
        if "dilations" in data:
            data["num_blocks"] = data.pop("dilations")
        return cls(**checked_fields(cls, data, where))


@dataclass(frozen=True)
class TrainingConfig:
    """The optimiser and loop settings (the authors' main.py defaults)."""

    lr: float = TRAINING_DEFAULTS["lr"]
    beta1: float = TRAINING_DEFAULTS["beta1"]
    beta2: float = TRAINING_DEFAULTS["beta2"]
    epsilon: float = TRAINING_DEFAULTS["epsilon"]
    batch_size: int = TRAINING_DEFAULTS["batch_size"]
    epoch: int = TRAINING_DEFAULTS["epoch"]
    label_smoothing: float = TRAINING_DEFAULTS["label_smoothing"]
    precision: str = "float32"  # or "bfloat16": mixed precision, float32 variables (opt-in)

    @classmethod
    def from_dict(cls, data, where="training"):
        return cls(**checked_fields(cls, data or {}, where))


@dataclass
class RunConfig:
    """One cross-validated run: the `run_config.json` of a run folder.

    `selection` is "last", "best-val" or "best-test"; `source` says where
    weights came from when they are not ours (the authors' released folders).
    `calibrate` holds a stratified tenth of each training part out of training to fit
    the fold's temperature and abstain thresholds on (best-val reuses its validation tenth).
    `normalise` is the feature normalisation the run trained with (`timnet_keras.features.normalise`: none,
    utterance or speaker); test, predict and export of the run apply it to the raw MFCCs. Runs
    written before it existed are `none`, the authors' features.
    """

    data: str
    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    protocol: str = "kfold"
    selection: str = "last"
    seed: int = 46
    split_fold: int = TRAINING_DEFAULTS["split_fold"]
    n_folds: int | None = None
    n_samples: int | None = None
    labels: tuple = ()
    features: dict = field(default_factory=dict)
    jit_compile: bool = True
    trainer: str = "sequential"  # or "batched" (JAX): the same mathematics, all folds as one program
    versions: dict = field(default_factory=dict)
    command: str = ""
    created: str = ""
    source: str = ""
    calibrate: bool = False
    normalise: str = DEFAULT_NORMALISE
    schema_version: int = SCHEMA_VERSION

    @property
    def test_selected(self):
        return self.selection == "best-test"

    @property
    def selection_note(self):
        return SELECTION_NOTES[self.selection] + ("; temperature fitted on a held-out tenth" if self.calibrate else "")

    def to_json(self):
        data = dataclasses.asdict(self)
        data["labels"] = list(self.labels)
        data["test_selected"] = self.test_selected  # for readers of the file; derived
        return data

    @classmethod
    def from_json(cls, data, where="run_config.json"):
        """The run config of a file; a mistyped or unknown field is named (RecordError), never dropped."""
        data = dict(data)
        data["model"] = ModelConfig.from_dict(data.get("model") or {}, f"{where}: model")
        data["training"] = TrainingConfig.from_dict(data.get("training"), f"{where}: training")
        data["labels"] = tuple(data.get("labels") or ())
        data.setdefault("schema_version", 0)
        fields = checked_fields(cls, data, where, ignored=("test_selected",), nested=("model", "training"))
        return cls(**fields)
