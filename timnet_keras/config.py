"""The one table of facts: corpora, their labels, lengths, seeds and depths; training defaults.

Every script and module reads defaults from here, so a corpus' label order or
signal length is stated exactly once. Values are the authors' (REFERENCE.md).
"""
from dataclasses import dataclass, field

SAMPLE_RATE = 22050
N_MFCC = 39
N_FFT = 2048
HOP_LENGTH = 512

# What an exported model takes (`--mode export --input`): the MFCC matrix (the default, as
# before), or a mono float32 waveform at SAMPLE_RATE with the MFCC computed inside the graph.
EXPORT_INPUTS = ("mfcc", "audio")

# The seed of an own corpus, and of cross-corpus runs without --random_seed:
# the authors' default in main.py (and EMODB's released weights).
DEFAULT_SEED = 46
DEFAULT_NUM_BLOCKS = 8


# Feature normalisation (`--normalise`, `timnet_keras.features.normalise`): the one table of the options, and what each
# one's statistics see. Every cache holds the raw MFCCs; a run applies its option after loading.
NORMALISATIONS = {
    "none": "the authors' raw MFCCs (the default): nothing standardised, bit for bit their pipeline",
    "utterance": "each recording standardised per coefficient over its own real (non-padded) frames; "
                 "sees that recording only",
    "speaker": "each speaker standardised per coefficient over the real frames of its recordings: a training "
               "speaker's from its recordings in the training part, a test speaker not in it from its own test "
               "recordings, features only (transductive enrolment); predict: an --enrol folder or the recordings "
               "given together",
}
DEFAULT_NORMALISE = "none"

@dataclass(frozen=True)
class CorpusSpec:
    """What the authors' pipeline assumes about one corpus."""

    name: str
    labels: tuple
    mean_signal_length: int
    seed: int
    num_blocks: int = DEFAULT_NUM_BLOCKS  # Temporal-Aware Blocks per direction (dilations 1, 2, 4, ...)
    aliases: tuple = field(default=())


CORPORA = {
    spec.name: spec
    for spec in (
        CorpusSpec("CASIA", ("angry", "fear", "happy", "neutral", "sad", "surprise"), 88000, 32),
        CorpusSpec("EMODB", ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"), 96000, 46),
        CorpusSpec("EMOVO", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"), 96000, 1),
        # The authors force 10 blocks for IEMOCAP's long utterances.
        CorpusSpec("IEMOCAP", ("angry", "happy", "neutral", "sad"), 310000, 16, num_blocks=10),
        CorpusSpec(
            "RAVDE",
            ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
            110000,
            46,
            aliases=("RAVDESS",),
        ),
        CorpusSpec("SAVEE", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"), 130000, 44),
        # Built-in synthetic corpus (timnet_keras.features.demo): 1-3 s utterances at 2 s, so 87 frames.
        # Six blocks see 127 frames, the fewest that cover them; blocks 7 and 8 would see only padding.
        CorpusSpec("DEMO", ("angry", "happy", "neutral", "sad"), 44100, 46, num_blocks=6),
    )
}

# Emotions shared across corpora for cross-corpus experiments (paper, Table 2).
CROSS_CORPUS_LABELS = ("angry", "fear", "happy", "neutral", "sad")
CROSS_CORPUS_NAMES = ("CASIA", "EMODB", "EMOVO", "RAVDE", "SAVEE")

# The command line's and the records' vocabularies: each word is defined here once.
MODES = ("train", "test", "predict", "cross", "export")
BACKENDS = ("tensorflow", "jax")
MODEL_VARIANTS = {  # the paper's model and its four ablations (Table 3)
    "timnet": "TIM-Net: bidirectional, multi-scale, dynamic fusion",
    "tcn": "standard TCN (keras-tcn residual blocks, forward only), its summed skip outputs pooled",
    "no_bd": "forward branch only (no bidirectional modelling)",
    "no_ms": "last scale only (no multi-scale fusion)",
    "no_df": "average fusion of the scales (no dynamic per-scale weights)",
}
FOLD_PROTOCOLS = ("kfold", "stratified", "speaker")  # how a run's folds are made (folds.make_folds)
GRID_PROTOCOLS = ("kfold", "speaker")  # the grid's cv cells; `--protocol both` asks for the two
SELECTIONS = ("last", "best-val", "best-test")  # which epoch a fold keeps; best-test is test-selected, by name only
TRAINERS = ("auto", "batched", "sequential")
PRECISIONS = ("float32", "bfloat16")
EXPORT_FORMATS = ("keras", "saved_model", "tflite", "onnx")
EXECUTORS = ("local", "ray")

# The authors' main.py defaults.
TRAINING_DEFAULTS = dict(
    lr=0.001,
    beta1=0.93,
    beta2=0.98,
    epsilon=1e-8,
    batch_size=64,
    epoch=500,
    dropout=0.1,
    activation="relu",
    filter_size=39,
    dilation_size=DEFAULT_NUM_BLOCKS,
    kernel_size=2,
    stack_size=1,
    split_fold=10,
    label_smoothing=0.1,
)


def canonical_name(name):
    """Map a user-given corpus name (any case, aliases) to the table's key.

    Returns None for names not in the table: those are own corpora.

    Example:
        >>> canonical_name("ravdess"), canonical_name("MyCorpus")
        ('RAVDE', None)
    """
    upper = name.upper()
    for spec in CORPORA.values():
        if upper == spec.name or upper in spec.aliases:
            return spec.name
    return None


def corpus_spec(name):
    """The table entry for a known corpus name; KeyError lists the known ones."""
    key = canonical_name(name)
    if key is None:
        raise KeyError(
            f"unknown corpus {name!r}; known corpora: {', '.join(known_corpus_names())}"
        )
    return CORPORA[key]


def default_seed(name):
    """The seed of the corpus' released weights; DEFAULT_SEED for own corpora."""
    key = canonical_name(name)
    return CORPORA[key].seed if key else DEFAULT_SEED


def default_num_blocks(name):
    key = canonical_name(name)
    return CORPORA[key].num_blocks if key else DEFAULT_NUM_BLOCKS


def known_corpus_names():
    return sorted(CORPORA) + ["RAVDESS"]
