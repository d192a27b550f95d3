"""librosa's default load and MFCC, computed bit for bit without importing librosa.

Why: a worker that imports librosa spends about 1.3 s before its first file
(SciPy's signal module rewrites its docstrings at import, numba loads
librosa's pitch kernels), more than it then spends on all its files.
The recipe below is librosa 0.11's, call for call: the same SciPy FFTs, the
same float64 window product, the same array layouts into the same einsum,
so the features are equal to librosa's to the last bit (tests/test_mfcc.py
compares them on synthetic files and signals, and on a sample of each corpus
it finds; all 535 Emo-DB files and a tenth of CASIA and EMOVO when written). Formats soundfile cannot
read still go through `librosa.load`.
"""
import numpy as np

from timnet_keras.config import HOP_LENGTH, N_FFT, N_MFCC, SAMPLE_RATE

N_MELS = 128  # librosa.feature.melspectrogram's default
TOP_DB = 80.0  # librosa.power_to_db's defaults: ref 1.0, amin 1e-10, top_db 80
AMIN = 1e-10
RESAMPLER = "soxr_hq"  # librosa.load's default res_type


def hann_window(n_fft=N_FFT):
    """The periodic Hann window, as `scipy.signal.get_window("hann", n_fft)` computes it.

    Example:
        >>> hann_window(4).tolist()
        [0.0, 0.5, 1.0, 0.5]
    """
    fac = np.linspace(-np.pi, np.pi, n_fft + 1)  # one extra point: DFT-even, then dropped
    window = np.zeros(n_fft + 1)
    for k, a in enumerate((0.5, 0.5)):
        window += a * np.cos(k * fac)
    return window[:-1]


def _hz_to_mel(frequencies):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    frequencies = np.asanyarray(frequencies)
    f_sp = 200.0 / 3
    mels = frequencies / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    if frequencies.ndim:
        above = frequencies >= min_log_hz
        mels[above] = min_log_mel + np.log(frequencies[above] / min_log_hz) / logstep
    elif frequencies >= min_log_hz:
        mels = min_log_mel + np.log(frequencies / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels):
    mels = np.asanyarray(mels)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    above = mels >= min_log_mel
    freqs[above] = min_log_hz * np.exp(logstep * (mels[above] - min_log_mel))
    return freqs


def mel_filterbank(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS):
    """(n_mels, 1 + n_fft // 2) float32 Slaney-normalised triangles: `librosa.filters.mel` with its defaults."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sample_rate) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


_CONSTANTS = {}


def _constants(sample_rate, n_fft):
    key = (sample_rate, n_fft)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = (hann_window(n_fft).reshape(-1, 1), mel_filterbank(sample_rate, n_fft))
    return _CONSTANTS[key]


def power_spectrogram(signal, sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH):
    """|STFT|² of a float32 signal: centred, zero padded, Hann window (librosa.stft's defaults)."""
    import scipy.fft

    window, _ = _constants(sample_rate, n_fft)
    padded = np.pad(signal, (n_fft // 2, n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length].T
    stft = np.zeros((1 + n_fft // 2, frames.shape[1]), dtype=np.complex64, order="F")
    stft[:] = scipy.fft.rfft(window * frames, axis=-2)
    return np.abs(stft) ** 2.0


def mfcc(signal, sample_rate=SAMPLE_RATE, n_mfcc=N_MFCC):
    """(n_mfcc, frames) float32: `librosa.feature.mfcc(y=signal, sr=sample_rate, n_mfcc=n_mfcc)`.

    Example:
        >>> mfcc(np.zeros(22050, np.float32)).shape
        (39, 44)
    """
    import scipy.fft

    signal = np.asarray(signal)
    if not np.issubdtype(signal.dtype, np.floating):
        raise ValueError(f"audio must be floating-point, not {signal.dtype}")
    if not np.isfinite(signal).all():
        raise ValueError("audio is not finite everywhere")
    _, mel_basis = _constants(sample_rate, N_FFT)
    power = power_spectrogram(signal, sample_rate)
    mel = np.einsum("...ft,mf->...mt", power, mel_basis, optimize=True)
    log_mel = 10.0 * np.log10(np.maximum(AMIN, mel))
    log_mel -= 10.0 * np.log10(np.maximum(AMIN, 1.0))
    log_mel = np.maximum(log_mel, log_mel.max() - TOP_DB)
    return scipy.fft.dct(log_mel, axis=-2, type=2, norm="ortho")[..., :n_mfcc, :]


def resample(signal, orig_sr, target_sr):
    """`librosa.resample` with its default soxr_hq: soxr, then trimmed or zero padded to ceil(n · ratio)."""
    if orig_sr == target_sr:
        return signal
    import soxr

    n_samples = int(np.ceil(signal.shape[-1] * (float(target_sr) / orig_sr)))
    resampled = soxr.resample(signal, orig_sr, target_sr, quality=RESAMPLER)
    if resampled.shape[-1] > n_samples:
        resampled = resampled[..., :n_samples]
    elif resampled.shape[-1] < n_samples:
        resampled = np.pad(resampled, (0, n_samples - resampled.shape[-1]), mode="constant")
    return np.asarray(resampled, dtype=signal.dtype)


def to_mono(signal):
    """librosa's downmix: the mean over channels of a (channels, samples) float array."""
    if not np.isfinite(signal).all():
        raise ValueError("audio is not finite everywhere")
    return np.mean(signal, axis=tuple(range(signal.ndim - 1))) if signal.ndim > 1 else signal


def load(path, sample_rate=SAMPLE_RATE):
    """float32 mono samples at `sample_rate`: `librosa.load(path, sr=sample_rate)`."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as audio:
            native_rate = audio.samplerate
            signal = audio.read(frames=-1, dtype=np.float32, always_2d=False).T
    except soundfile.SoundFileRuntimeError:
        import warnings

        import librosa  # audioread's formats, as librosa.load falls back to them

        with warnings.catch_warnings():  # its fallback warns twice per file; a failure is reported by the caller
            warnings.simplefilter("ignore", (UserWarning, FutureWarning))
            return librosa.load(path, sr=sample_rate)[0]
    return resample(to_mono(signal), native_rate, sample_rate)

