"""`preprocessor.py`'s recipe as graph ops: a waveform in, the (frames, n_mfcc) MFCC matrix out.

For exports whose input is audio (`export --input audio`): the ops are
TensorFlow's (pad, slice, reshape, concat, matmul, log, max), so one graph
serves a SavedModel and converts to ONNX with tf2onnx op for op. Step by step,
as `MfccPreprocessor.signal_features` (librosa 0.11's defaults):

1. centre pad with zeros or centre crop to `mean_signal_length` samples
   (`fit_length`: the extra zero goes to the right; a crop starts at (n - L) // 2);
2. librosa's centred STFT: 1024 zeros each side (`pad_mode="constant"`), frames of
   2048 samples every 512 (1 + L // 512 frames), periodic Hann window;
3. |STFT|²: the 2048-point real DFT of each windowed frame in two matmul stages
   (Cooley-Tukey's 2048 = 64 × 32 split: a 64-point DFT, twiddle factors, a 32-point
   DFT; `FactoredDft`), so the graph holds a few small matrices rather than a
   2048 × 1025 table per part (17 MB) and does a tenth of the multiplications; re² + im²;
4. librosa's Slaney mel filterbank (128 × 1025, `mfcc.mel_filterbank`, librosa's own
   matrix bit for bit) as a matmul;
5. `power_to_db`: 10 · log10(max(1e-10, mel)), ref 1.0, then floored at the recording's
   maximum minus 80 dB (top_db 80, per recording over all its frames and bands);
6. DCT type II with orthonormal scaling (scipy's matrix), the first n_mfcc rows.

The resampler is not in the graph: the input is at the preprocessor's sample
rate (22 050 Hz), resampled as librosa.load does (soxr_hq) when it was not
recorded at that rate; another resampler costs the released weights accuracy
(REFERENCE.md). The DFT runs in float32 where scipy's runs in float64: on DEMO
and Emo-DB signals the MFCCs agree within 2e-3 (coefficient 0 reaches ±660, where
float32's spacing is 6e-5; the others agree within 5e-4), see tests/test_export.py.
"""
import keras
import numpy as np

from timnet_keras.config import HOP_LENGTH, N_FFT
from timnet_keras.model.layers import PACKAGE
from timnet_keras.features.mfcc import AMIN, N_MELS, TOP_DB, hann_window, mel_filterbank
from timnet_keras.features.preprocessor import frames_for


def _cos_sin(rows, columns, period):
    """cos and sin of 2π · row · column / period, (rows, columns) float32, computed in float64."""
    angle = 2 * np.pi * (np.outer(np.arange(rows), np.arange(columns)) % period) / period  # mod: small, exact angles
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


class FactoredDft:
    """|rfft(x)|² of (batch, frames, n_fft) real frames as matmuls of small matrices (`power`).

    With n = n1 + N1·n2 and k = N2·k1 + k2 the DFT splits into an N2-point DFT over n2,
    the twiddle factors exp(-2πi·n1·k2/N), then an N1-point DFT over n1 (only the k1 that
    reach bin N/2 are computed). Conjugated throughout (every sine positive), which |·|²
    does not see. TensorFlow ops: reshape, matmul, multiply, transpose, slice.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(1, 3, 2048)).astype(np.float32)
        >>> reference = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        >>> bool(np.abs(np.asarray(FactoredDft(2048).power(x)) - reference).max() < 1e-6 * reference.max())
        True
    """

    def __init__(self, n_fft=N_FFT, n2=64):
        if n_fft % n2:
            raise ValueError(f"n_fft {n_fft} is not a multiple of {n2}")
        self.n_fft, self.n2, self.n1 = n_fft, n2, n_fft // n2
        self.k1 = min(self.n1, -(-(n_fft // 2 + 1) // n2))  # the k1 that reach the n_fft // 2 + 1 bins
        self.c2, self.s2 = _cos_sin(n2, n2, n2)  # (k2, n2)
        self.tc, self.ts = _cos_sin(n2, self.n1, n_fft)  # (k2, n1): twiddles
        self.c1, self.s1 = _cos_sin(self.n1, self.k1, self.n1)  # (n1, k1)

    def power(self, frames):
        """(batch, frames, n_fft) float32, `frames` known -> (batch, frames, n_fft // 2 + 1) |rfft|²."""
        import tensorflow as tf

        count = frames.shape[1]
        rows = tf.reshape(frames, [-1, count, self.n2, self.n1])  # row n2, column n1: sample n1 + N1·n2
        p, q = tf.matmul(self.c2, rows), tf.matmul(self.s2, rows)  # N2-point DFT over n2: (.., k2, n1)
        b_re, b_im = p * self.tc - q * self.ts, p * self.ts + q * self.tc  # twiddles
        x_re = tf.matmul(b_re, self.c1) - tf.matmul(b_im, self.s1)  # N1-point DFT over n1: (.., k2, k1)
        x_im = tf.matmul(b_re, self.s1) + tf.matmul(b_im, self.c1)
        power = tf.transpose(x_re * x_re + x_im * x_im, [0, 1, 3, 2])  # (.., k1, k2): k = N2·k1 + k2 in order
        return tf.reshape(power, [-1, count, self.k1 * self.n2])[:, :, : self.n_fft // 2 + 1]


def dct_matrix(n_mfcc, n_mels=N_MELS):
    """(n_mels, n_mfcc) float32: `x @ dct_matrix` is `scipy.fft.dct(x, type=2, norm="ortho")[:n_mfcc]` along the last axis."""
    import scipy.fft

    return scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=0)[:n_mfcc].T.astype(np.float32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MfccGraph(keras.layers.Layer):
    """(batch, samples) float32 waveforms at `sample_rate` -> (batch, frames, n_mfcc) MFCCs, in graph ops.

    Every recording of a batch has the batch's length, so each is cropped or padded
    alike; recordings of different lengths go one per batch. TensorFlow backend only
    (its ops are TensorFlow's, for the SavedModel and tf2onnx).
    """

    def __init__(self, mean_signal_length, sample_rate, n_mfcc, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mean_signal_length = int(mean_signal_length)
        self.sample_rate = int(sample_rate)
        self.n_mfcc = int(n_mfcc)
        self.frames = frames_for(self.mean_signal_length)
        self._window = hann_window(N_FFT).astype(np.float32)
        self._dft = FactoredDft(N_FFT)
        self._mel = np.ascontiguousarray(mel_filterbank(self.sample_rate, N_FFT).T)  # (1025, 128)
        self._dct = dct_matrix(self.n_mfcc)

    def call(self, audio):
        import tensorflow as tf

        length, frames = self.mean_signal_length, self.frames
        audio = tf.convert_to_tensor(audio, tf.float32)
        # 1. centre pad (extra zero right) or centre crop: pad to at least L, then take the middle L
        pad = tf.maximum(length - tf.shape(audio)[1], 0)
        audio = tf.pad(audio, [[0, 0], [pad // 2, pad - pad // 2]])
        start = (tf.shape(audio)[1] - length) // 2
        audio = tf.reshape(audio[:, start:start + length], [-1, length])
        # 2. centred frames: 2048 = 4 hops, so frame t is hop-chunks t..t+3 side by side
        hops = N_FFT // HOP_LENGTH
        padded = tf.pad(audio, [[0, 0], [N_FFT // 2, N_FFT // 2]])[:, :(frames + hops - 1) * HOP_LENGTH]
        chunks = tf.reshape(padded, [-1, frames + hops - 1, HOP_LENGTH])
        framed = tf.concat([chunks[:, k:k + frames] for k in range(hops)], axis=-1)  # (batch, frames, 2048)
        # 3.-4. power spectrum of the Hann-windowed frames, mel bands
        mel = tf.matmul(self._dft.power(framed * self._window), self._mel)
        # 5. power_to_db with ref 1.0 and top_db 80 over the whole recording
        decibels = np.float32(10.0 / np.log(10.0)) * tf.math.log(tf.maximum(mel, AMIN))
        decibels = tf.maximum(decibels, tf.reduce_max(decibels, axis=[1, 2], keepdims=True) - TOP_DB)
        # 6. DCT-II, orthonormal, first n_mfcc coefficients
        return tf.matmul(decibels, self._dct)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.frames, self.n_mfcc)

    def get_config(self):
        return {**super().get_config(), "mean_signal_length": self.mean_signal_length, "sample_rate": self.sample_rate,
                "n_mfcc": self.n_mfcc}


def audio_classifier(classifier, network=None):
    """A Keras model: (batch, samples) waveforms -> `MfccGraph` -> `classifier` -> probabilities.

    The classifier's own graph follows the features: its fold members, their
    temperatures (a `--calibrate` run's) and the fold mean, as the MFCC-input export. `network`, when
    given, is what runs on the features instead of `classifier` (`export.exported_model`: a `utterance`
    run's normalisation, then the classifier).
    """
    preprocessor = classifier.preprocessor
    audio = keras.Input(shape=(None,), dtype="float32", name="audio")
    features = MfccGraph(preprocessor.mean_signal_length, preprocessor.sample_rate, preprocessor.n_mfcc, name="mfcc")(audio)
    return keras.Model(audio, (network or classifier)(features), name=f"{classifier.name}_audio")
