"""Cepstral mean and variance normalisation (`--normalise none|utterance|speaker`), for speakers the model never heard.

TIM-Net's input is the authors' raw MFCC matrix, whose level and spectral
tilt carry the speaker and the microphone as much as the emotion. These
options standardise each coefficient (subtract its mean, divide by its
standard deviation); they differ in whose frames the statistics come from
(`config.NORMALISATIONS` is the one table of them):

- `none`: nothing is changed; the authors' pipeline bit for bit (the default).
- `utterance`: each recording over its own real frames; it sees that recording only.
- `speaker`: each speaker over the real frames of all of that speaker's
  recordings it may see. In a fold: a speaker with recordings in the training
  part takes the statistics of those (then under 10-fold nothing of the test
  part changes what the training rows, or that speaker's test rows, look like);
  a speaker absent from the training part, the held-out speaker of
  leave-one-speaker-out, takes the statistics of its own test recordings, their
  features only and never their labels. That is the transductive "enrolment"
  setting: the test speaker's unlabelled recordings are looked at before any of
  them is scored, as a deployed system would look at an enrolment recording of
  its user. At prediction the statistics come from an enrolment folder
  (`--enrol DIR`) or, without one, from the recordings given together in one
  call, taken to be one speaker; the output says which.

Why the cache stays raw and normalisation is a transform after loading: the
cache (`MFCC/<DATA>.npz`) is the authors' features and nothing else, so `none`
stays bit for bit theirs, one cache serves every option, and the speaker
statistics depend on the fold (which speakers are in the training part),
which a cache made once cannot know. A run records its option
(`run_config.json`: `normalise`), and test, predict and export of the run
apply it the same way. A feature cache whose settings say it is already
normalised (`settings["normalise"]`, as `normalised_features` writes it) is not
the raw input a run starts from and is refused (`check_raw_cache`).

Real frames and padding. The authors' pipeline centre-pads every recording
shorter than `mean_signal_length` with zeros; a frame whose analysis window
holds nothing but those zeros has a constant log-mel spectrum (librosa clips
it to the recording's floor, 80 dB under its loudest bin), whose DCT is the
same "silent" row every time: coefficient 0 alone, the others zero. On
Emo-DB (96 000 samples) a 1.5 s recording is two-thirds such rows. The
statistics are taken over the real frames only (`real_frames`: every frame
but the runs of silent rows at either end of the matrix), because over all
frames the mean and deviation would measure how long the recording is (how
much padding it got) rather than the voice and the channel. The padded frames
are kept as the pipeline makes them: the same affine map (one per
coefficient) is applied to every frame, so the matrix stays an image of the
authors' one, silence stays below speech where the pipeline put it, and the
model sees the padding it was always trained with. A silent row is found from
the matrix alone, so the cache needs no record of the recordings' lengths and
an exported model can find it itself; a recording that starts or ends in
digital silence or below its floor has those frames counted with the padding,
which they equal bit for bit. A recording with no real frame at all (digital
silence) is standardised over all its frames.

No Keras here: extraction and the command line's checks import this module.
"""
import dataclasses
from dataclasses import dataclass

import numpy as np

from timnet_keras.config import DEFAULT_NORMALISE, NORMALISATIONS
from timnet_keras.errors import InputError, TimnetError

# A frame is silent when each of coefficients 1.. is at most this fraction of coefficient 0: the DCT of a constant
# spectrum is exactly zero there (SciPy's and so librosa's); the margin covers another DCT's round-off, and no frame
# of speech comes near it (its coefficients 1.. are tens of dB).
SILENCE_TOLERANCE = 1e-5
MIN_STD = 1e-6  # a coefficient that does not vary over the frames (a silent recording's) is scaled by 1, not by 0
CHUNK_ROWS = 256  # recordings standardised at a time: float64 work arrays of a long corpus stay small


class NormaliseError(TimnetError):
    """Features that cannot be normalised as asked; the message says what to do."""


def check_normalise(name, where="--normalise"):
    """`name` when it is one of `config.NORMALISATIONS`; InputError naming `where` otherwise."""
    if name not in NORMALISATIONS:
        raise InputError(f"{where} {name!r}: choose one of {', '.join(NORMALISATIONS)}")
    return name


def cache_normalisation(settings):
    """What a feature cache's settings say its features are: "none" (raw MFCCs, every cache we extract) or an option."""
    return (settings or {}).get("normalise", DEFAULT_NORMALISE)


def check_raw_cache(features, normalise, where="the feature cache"):
    """Refuses features that are not the raw MFCCs a run of normalisation `normalise` starts from.

    Every run normalises raw features itself, so a cache made with a normalisation (any but
    none) would be normalised twice, or, for a `none` run, not be the authors' features.
    """
    made = cache_normalisation(features.settings)
    if made != DEFAULT_NORMALISE:
        raise NormaliseError(f"{where} holds {made}-normalised features, but a run starts from raw MFCCs (normalise "
                             f"none) and applies its own normalisation (this one: {normalise}); re-extract it with "
                             f"python Code/extract_feature.py")


def check_speakers(features, normalise, where="--normalise speaker"):
    """Speaker normalisation needs a speaker for every recording."""
    if normalise != "speaker":
        return
    speakers = tuple(features.speakers)
    if len(speakers) != len(features.x) or any(s == "" for s in speakers):
        raise NormaliseError(f"{where} needs a speaker for every recording and the cache names "
                             f"{sum(1 for s in speakers if s != '')} of {len(features.x)}; re-extract it with "
                             f"--speaker_regex, or use --normalise utterance")


# --- frames ------------------------------------------------------------------------------------

def silent_frames(x):
    """(..., frames) True where a frame is the MFCC of a constant spectrum: padding, digital silence, the floor.

    Example:
        >>> silent_frames(np.array([[-800.0, 0, 0], [-300.0, 12.5, -3.0]])).tolist()
        [True, False]
    """
    x = np.asarray(x)
    if x.shape[-1] < 2:
        return np.zeros(x.shape[:-1], bool)
    return np.max(np.abs(x[..., 1:]), axis=-1) <= SILENCE_TOLERANCE * np.abs(x[..., 0])


def real_frames(x):
    """(..., frames) True for the frames the statistics are taken over: all but the silent runs at either end.

    A matrix without a real frame (a silent recording) counts all of its frames.

    Example:
        >>> s, v = [-800.0, 0, 0], [-300.0, 12.5, -3.0]
        >>> real_frames(np.array([s, s, v, s, v, s])).astype(int).tolist()
        [0, 0, 1, 1, 1, 0]
    """
    silent = silent_frames(x)
    leading = np.logical_and.accumulate(silent, axis=-1)
    trailing = np.logical_and.accumulate(silent[..., ::-1], axis=-1)[..., ::-1]
    real = ~(leading | trailing)
    real[~real.any(axis=-1)] = True
    return real


# --- statistics ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Statistics:
    """Per-coefficient mean and deviation over the real frames of some recordings, and where they came from.

    `source` says whose frames they are, in words a predictions file can carry
    ("enrolment folder DIR (12 recordings)").
    """

    mean: np.ndarray  # (coefficients,) float64
    std: np.ndarray  # (coefficients,) float64; a deviation under MIN_STD is 1
    frames: int
    recordings: int
    source: str = ""

    def apply(self, x):
        """x (..., frames, coefficients) standardised with these statistics, float32."""
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32)


def _scale(std):
    return np.where(std > MIN_STD, std, 1.0)


def frame_statistics(x, source=""):
    """The `Statistics` of the real frames of recordings x (recordings, frames, coefficients), all pooled.

    Example:
        >>> x = np.array([[[-800.0, 0, 0], [-300.0, 10.0, 2.0], [-100.0, 30.0, 2.0]]])
        >>> stats = frame_statistics(x)
        >>> stats.mean.tolist(), stats.std.tolist(), stats.frames
        ([-200.0, 20.0, 2.0], [100.0, 10.0, 1.0], 2)
    """
    x = np.asarray(x)
    if x.ndim != 3 or not len(x):
        raise NormaliseError(f"statistics need a batch of MFCC matrices (recordings, frames, coefficients); got shape "
                             f"{x.shape}")
    frames = np.asarray(x[real_frames(x)], np.float64)
    return Statistics(frames.mean(axis=0), _scale(frames.std(axis=0)), int(len(frames)), int(len(x)), source)


def utterance_normalised(x):
    """Each recording of x (recordings, frames, coefficients) standardised over its own real frames, float32.

    Example:
        >>> x = np.array([[[-800.0, 0, 0], [-300.0, 10.0, 2.0], [-100.0, 30.0, 2.0]]])
        >>> utterance_normalised(x)[0].round(2).tolist()
        [[-6.0, -2.0, -2.0], [-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]]
    """
    x = np.asarray(x)
    out = np.empty(x.shape, np.float32)
    for start in range(0, len(x), CHUNK_ROWS):
        part = np.asarray(x[start:start + CHUNK_ROWS], np.float64)
        mask = real_frames(part)[..., None]
        count = mask.sum(axis=1, keepdims=True)
        mean = np.where(mask, part, 0.0).sum(axis=1, keepdims=True) / count
        std = np.sqrt(np.where(mask, (part - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
        out[start:start + CHUNK_ROWS] = (part - mean) / _scale(std)
    return out


def speaker_normalised(x, speakers, train, test=()):
    """x with the rows of `train` and `test` standardised per speaker (see the module's notes), float32.

    A speaker with rows in `train` takes the statistics of those; one without, of its rows in `test`.
    Labels are never read. Rows in neither part are returned as they are.

    Example:
        >>> s = [-800.0, 0.0]
        >>> x = np.array([[[-300.0, 1.0], s], [[-100.0, 3.0], s], [[-50.0, 7.0], s], [[-30.0, 9.0], s]])
        >>> out = speaker_normalised(x, ["a", "a", "b", "b"], train=[0, 1], test=[2, 3])
        >>> out[:, 0].tolist()
        [[-1.0, -1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, 1.0]]
    """
    x = np.asarray(x)
    speakers = np.asarray(speakers)
    in_train, in_test = np.zeros(len(x), bool), np.zeros(len(x), bool)
    in_train[np.asarray(train, dtype=int)] = True
    in_test[np.asarray(test, dtype=int)] = True
    out = np.array(x, dtype=np.float32, copy=True)
    for speaker in np.unique(speakers[in_train | in_test]):
        own = speakers == speaker
        reference = np.flatnonzero(own & in_train) if (own & in_train).any() else np.flatnonzero(own & in_test)
        rows = np.flatnonzero(own & (in_train | in_test))
        out[rows] = frame_statistics(x[reference]).apply(x[rows])
    return out


# --- feature sets and folds ------------------------------------------------------------------------

def normalised_features(features, normalise):
    """A FeatureSet with every recording normalised without folds: `utterance`, or `speaker` over all its rows.

    Its settings record the option (`normalise`), so saved as a cache it is refused by runs
    (`check_raw_cache`). `none` returns `features` itself.
    """
    check_normalise(normalise, "normalise")
    if normalise == DEFAULT_NORMALISE:
        return features
    if normalise == "utterance":
        x = utterance_normalised(features.x)
    else:
        check_speakers(features, normalise)
        x = speaker_normalised(features.x, features.speakers, np.arange(len(features.x)))
    return dataclasses.replace(features, x=x, settings={**features.settings, "normalise": normalise}, extra={})


def fold_independent(features, train, test):
    """Whether a fold's speaker normalisation is the fold-free one: every speaker wholly in one part, all rows covered."""
    speakers = np.asarray(features.speakers)
    train_speakers, test_speakers = set(speakers[np.asarray(train, int)]), set(speakers[np.asarray(test, int)])
    return not (train_speakers & test_speakers) and len(train) + len(test) == len(features.x)


def fold_views(features, normalise, folds):
    """[FeatureSet per fold of `folds` ([(train, test)])]: the features each fold trains and tests on.

    `none`: `features` itself for every fold (the same object, the same bits). `utterance`, and
    `speaker` when no speaker is on both sides of any fold (leave-one-speaker-out): one normalised
    copy shared by every fold. `speaker` under 10-fold: a copy per fold, since a speaker's statistics
    are those of its rows in that fold's training part.
    """
    check_normalise(normalise, "normalise")
    if normalise == DEFAULT_NORMALISE:
        return [features for _ in folds]
    check_speakers(features, normalise)
    shared = None
    views = []
    for train, test in folds:
        if normalise == "utterance" or fold_independent(features, train, test):
            if shared is None:
                shared = normalised_features(features, normalise)
            views.append(shared)
        else:
            x = speaker_normalised(features.x, features.speakers, train, test)
            views.append(dataclasses.replace(features, x=x, settings={**features.settings, "normalise": normalise},
                                             extra={}))
    return views


def fold_view(features, normalise, train, test):
    """The FeatureSet one fold (train, test) trains and tests on (see `fold_views`)."""
    return fold_views(features, normalise, [(train, test)])[0]


def view_blocks(views):
    """(x, y, offsets) for trainers that index one array: the distinct views' rows stacked, and each view's offset.

    Views that are one object (every fold of `none`, `utterance` or leave-one-speaker-out) share
    one block, without a copy when there is only that one.
    """
    blocks, offsets, position = [], [], {}
    for view in views:
        if id(view) not in position:
            position[id(view)] = len(blocks)
            blocks.append(view)
        offsets.append(position[id(view)] * len(blocks[0].x))
    if len(blocks) == 1:
        return blocks[0].x, blocks[0].y, offsets
    return np.concatenate([b.x for b in blocks]), np.concatenate([b.y for b in blocks]), offsets


def describe(normalise):
    """The option in words (`config.NORMALISATIONS`)."""
    return NORMALISATIONS[check_normalise(normalise, "normalise")]
