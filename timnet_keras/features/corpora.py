"""Readers for the six benchmark corpora in their distributed layouts, and own corpora.

Each reader returns `Utterance(path, label, speaker)` records in the authors'
sample order: classes in the label table's order, and inside a class the
files in natural sort order. The folds are drawn over this order, so it is
part of reproducing the paper (a different order mixes test and training
samples of the released weights).
"""
import glob
import os
import re
from collections import namedtuple

from timnet_keras.errors import TimnetError
from timnet_keras.config import CORPORA, canonical_name

Utterance = namedtuple("Utterance", "path label speaker")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")  # what libsndfile reads under the corpus' own names


class CorpusError(TimnetError):
    """A corpus folder that cannot be read; the message says what to do."""


def natural_key(text):
    """Sort key that orders 'a2' before 'a10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def audio_files(folder, recursive=False):
    """Audio files in `folder` (and below, when `recursive`), following links but never a loop."""
    if not recursive:
        return [p for p in glob.glob(os.path.join(folder, "*")) if os.path.isfile(p) and p.lower().endswith(AUDIO_EXTENSIONS)]
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = os.path.realpath(root)
        # a link to this folder or one above it is a loop: following it comes back here
        dirs[:] = sorted(d for d in dirs if not _is_ancestor(os.path.realpath(os.path.join(root, d)), here))
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(AUDIO_EXTENSIONS)
                  and os.path.isfile(os.path.join(root, f))]
    return found


def _is_ancestor(path, of):
    return of == path or of.startswith(path.rstrip(os.sep) + os.sep)


def _in_authors_order(utterances, labels, root):
    rank = {label: i for i, label in enumerate(labels)}
    return sorted(utterances, key=lambda u: (rank[u.label], natural_key(os.path.relpath(u.path, root))))


# --- the benchmark corpora -------------------------------------------------------

EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"}
EMOVO_EMOTIONS = {"rab": "angry", "dis": "disgust", "pau": "fear", "gio": "happy", "neu": "neutral", "tri": "sad", "sor": "surprise"}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgust", "08": "surprise"}
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}
IEMOCAP_EMOTIONS = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}


def emodb_name(stem):
    """(label, speaker) of an Emo-DB file name `SSTTTEV`, or None.

    Example:
        >>> emodb_name("03a01Wa")
        ('angry', '03')
    """
    if len(stem) == 7 and stem[:2].isdigit() and stem[5] in EMODB_EMOTIONS:
        return EMODB_EMOTIONS[stem[5]], stem[:2]
    return None


def emovo_name(stem):
    """(label, speaker) of an EMOVO file name `<code>-<speaker>-<sentence>`, or None."""
    parts = stem.split("-")
    if len(parts) == 3 and parts[0].lower() in EMOVO_EMOTIONS and parts[1]:
        return EMOVO_EMOTIONS[parts[0].lower()], parts[1].lower()
    return None


def ravdess_name(stem):
    """(label, actor) of a RAVDESS speech file `MM-VV-EE-II-SS-RR-AA` (modality 03, vocal channel 01), or None."""
    parts = stem.split("-")
    if len(parts) == 7 and parts[0] == "03" and parts[1] == "01" and parts[2] in RAVDESS_EMOTIONS and parts[6]:
        return RAVDESS_EMOTIONS[parts[2]], parts[6]
    return None


_SAVEE_NAME = re.compile(r"^(?:(?P<speaker>[A-Za-z]{2})_)?(?P<code>sa|su|a|d|f|h|n)(?P<number>\d+)$")


def savee_name(stem, folder=""):
    """(label, speaker) of a SAVEE file `<code><nn>` in a speaker folder or flat `<speaker>_<code><nn>`, or None."""
    match = _SAVEE_NAME.match(stem)
    if not match:
        return None
    return SAVEE_EMOTIONS[match.group("code")], (match.group("speaker") or folder).upper()


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _read_by_name(files, parse):
    out = []
    for path in files:
        parsed = parse(path)
        if parsed:
            out.append(Utterance(path, *parsed))
    return out


def read_emodb(root):
    """`SSTTTEV.wav` in root or root/wav; speaker SS, emotion letter E."""
    folder = os.path.join(root, "wav") if os.path.isdir(os.path.join(root, "wav")) else root
    return _read_by_name(audio_files(folder), lambda p: emodb_name(_stem(p)))


def read_casia(root):
    """`root/<speaker>/<emotion>/<id>.wav`."""
    labels = CORPORA["CASIA"].labels
    out = []
    for path in audio_files(root, recursive=True):
        parts = os.path.relpath(path, root).split(os.sep)
        if len(parts) >= 3 and parts[-2] in labels:
            out.append(Utterance(path, parts[-2], parts[-3]))
    return out


def read_emovo(root):
    """`root/<speaker>/<code>-<speaker>-<sentence>.wav`."""
    return _read_by_name(audio_files(root, recursive=True), lambda p: emovo_name(_stem(p)))


def read_ravdess(root):
    """`MM-VV-EE-II-SS-RR-AA.wav`, in Actor_XX folders or flat; speech audio only."""
    return _read_by_name(audio_files(root, recursive=True), lambda p: ravdess_name(_stem(p)))


def read_savee(root):
    """`root/<speaker>/<code><nn>.wav` or flat `<speaker>_<code><nn>.wav`."""
    return _read_by_name(audio_files(root, recursive=True),
                         lambda p: savee_name(_stem(p), os.path.basename(os.path.dirname(p))))


_IEMOCAP_LINE = re.compile(r"^\[[^\]]+\]\s+(?P<utt>Ses\d+[FM]_\S+)\s+(?P<emotion>\w+)\s+\[")


def read_iemocap(root):
    """Sessions 1-5; labels from EmoEvaluation; happy and excited merged; 4 classes."""
    out = []
    for session in sorted(glob.glob(os.path.join(root, "Session*"))):
        for evaluation in sorted(glob.glob(os.path.join(session, "dialog", "EmoEvaluation", "*.txt"))):
            with open(evaluation, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    match = _IEMOCAP_LINE.match(line)
                    if not match or match.group("emotion") not in IEMOCAP_EMOTIONS:
                        continue
                    utt = match.group("utt")
                    dialog = utt.rsplit("_", 1)[0]
                    path = os.path.join(session, "sentences", "wav", dialog, utt + ".wav")
                    if os.path.isfile(path):
                        speaker = utt[:5] + utt.rsplit("_", 1)[1][0]  # session + gender
                        out.append(Utterance(path, IEMOCAP_EMOTIONS[match.group("emotion")], speaker))
    return out


READERS = {
    "CASIA": read_casia,
    "EMODB": read_emodb,
    "EMOVO": read_emovo,
    "IEMOCAP": read_iemocap,
    "RAVDE": read_ravdess,
    "SAVEE": read_savee,
}


# --- own corpora ---------------------------------------------------------------

def read_class_folders(root, labels=None, speaker_regex=None):
    """The authors' layout, for any corpus: `root/<class>/*.wav`.

    Labels are the sorted folder names unless given. `speaker_regex` is
    searched in each file name; its first group (or the whole match) is the
    speaker, else the speaker is unknown ("").
    """
    if labels is None:
        labels = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if len(set(labels)) < 2 or len(set(labels)) != len(labels):
        raise CorpusError(f"{root}: class folders {', '.join(labels) or 'none'}; an emotion corpus needs at least two "
                          f"distinct class folders (one sub-folder of audio per class)")
    pattern = re.compile(speaker_regex) if speaker_regex else None
    out = []
    for label in labels:
        folder = os.path.join(root, label)
        if not os.path.isdir(folder):
            raise CorpusError(f"class folder {folder} not found; labels given: {', '.join(labels)}")
        for path in audio_files(folder, recursive=True):
            speaker = ""
            if pattern:
                match = pattern.search(os.path.basename(path))
                speaker = (match.group(1) if match.groups() else match.group(0)) if match else ""
            out.append(Utterance(path, label, speaker))
    return tuple(labels), out


def read_corpus(data_name, root, labels=None, speaker_regex=None):
    """Reads any corpus; returns (labels, utterances in the authors' order).

    Known names use their native layout and the table's labels; any other
    name is a folder-per-class corpus.
    """
    if not os.path.isdir(root):
        raise CorpusError(f"audio folder {root} not found; pass --wav_dir PATH to the corpus' audio")
    key = canonical_name(data_name)
    if key == "DEMO":
        raise CorpusError("the DEMO corpus is generated, not read: use timnet_keras.features.demo")
    if key is not None:
        labels = CORPORA[key].labels
        utterances = READERS[key](root)
    else:
        labels, utterances = read_class_folders(root, labels, speaker_regex)
    if not utterances:
        layout = "its native layout" if key else "one sub-folder of .wav files per class"
        raise CorpusError(f"no {data_name} audio found under {root}; expected {layout} (see README)")
    return tuple(labels), _in_authors_order(utterances, labels, root)
