"""The built-in DEMO corpus: synthetic, speech-like, emotion-like, and free.

Voiced signals (a harmonic source with spectral tilt under a syllable-rate
envelope) whose four classes differ the way acted emotions tend to: pitch
level and contour, speaking rate, energy and spectral tilt. Six synthetic
speakers shift pitch and timbre. It is seeded and generated in about a
second, so `make demo` and the tests need no download.
"""
import os

import numpy as np

from timnet_keras.config import CORPORA, SAMPLE_RATE

# label: (pitch factor, contour slope over the utterance, contour jitter,
#         syllables per second, energy, spectral tilt exponent)
PROSODY = {
    "angry": (1.40, 0.05, 0.18, 5.5, 1.00, -0.8),
    "happy": (1.25, 0.35, 0.08, 4.5, 0.60, -1.2),
    "neutral": (1.00, 0.00, 0.03, 3.5, 0.35, -1.6),
    "sad": (0.85, -0.25, 0.02, 2.2, 0.15, -2.2),
}
SPEAKERS = {"spk1": (105, 0.0), "spk2": (125, 0.2), "spk3": (150, -0.2), "spk4": (190, 0.1), "spk5": (215, -0.1), "spk6": (240, 0.3)}
DEMO_LABELS = CORPORA["DEMO"].labels
assert tuple(PROSODY) == DEMO_LABELS


def _utterance(rng, label, speaker, sample_rate):
    pitch, slope, jitter, rate, energy, tilt = PROSODY[label]
    base_f0, timbre = SPEAKERS[speaker]
    duration = rng.uniform(1.0, 3.0)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    progress = t / duration
    wobble = np.interp(t, np.linspace(0, duration, 12), rng.normal(0, jitter, 12))
    f0 = base_f0 * pitch * rng.uniform(0.95, 1.05) * (1 + slope * (progress - 0.5) + wobble)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = np.arange(1, int(5000 / f0.max()) + 1)
    amplitudes = harmonics.astype(float) ** (tilt + timbre)
    source = (amplitudes[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
    syllables = np.maximum(np.sin(np.pi * rate * rng.uniform(0.9, 1.1) * t + rng.uniform(0, np.pi)), 0) ** 0.7
    signal = energy * rng.uniform(0.8, 1.2) * syllables * source / np.abs(source).max()
    signal += rng.normal(0, 0.003, signal.shape)
    return (0.9 * signal / max(1.0, np.abs(signal).max())).astype(np.float32)


def synthesize_demo_corpus(n_utterances=200, seed=46, sample_rate=SAMPLE_RATE):
    """[(relative path, label, speaker, signal)] in the authors' order (class, then name)."""
    rng = np.random.default_rng(seed)
    speakers = list(SPEAKERS)
    items = []
    for i in range(n_utterances):
        label = DEMO_LABELS[i % len(DEMO_LABELS)]
        speaker = speakers[(i // len(DEMO_LABELS)) % len(speakers)]
        path = f"{speaker}/{label}_{i:03d}.wav"
        items.append((path, label, speaker, _utterance(rng, label, speaker, sample_rate)))
    rank = {label: k for k, label in enumerate(DEMO_LABELS)}
    return sorted(items, key=lambda item: (rank[item[1]], item[0]))


def write_demo_wavs(folder, n_utterances=200, seed=46):
    """The demo corpus as float wav files in a folder per class (an own-corpus layout)."""
    import soundfile

    paths = []
    for rel, label, speaker, signal in synthesize_demo_corpus(n_utterances, seed):
        path = os.path.join(folder, label, f"{speaker}_{os.path.basename(rel)}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        soundfile.write(path, signal, SAMPLE_RATE, subtype="FLOAT")
        paths.append(path)
    return paths
