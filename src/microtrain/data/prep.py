"""Resampling and normalization of trials `x[..., time]` (numpy only).

A note on slow-cortical-potential sets (SelfRegulationSCP1/2): the class is
carried by the *offset* of the signal, so `normalize_per_trial(demean=True)`
removes the information. Use `zscore` with statistics fitted on the training
split (per channel, over trials and time) for those."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..errors import MicrotrainError

KAISER_BETA = 5.0      # stop-band attenuation ~ 50 dB
TAPS_PER_PHASE = 10    # filter half-length in units of max(up, down)


def resample(x: np.ndarray, fs_from: float, fs_to: float) -> np.ndarray:
    """Resample along the last axis from `fs_from` to `fs_to` Hz with a
    polyphase windowed-sinc filter (up by L, low-pass, down by M, L/M the
    reduced ratio). The anti-aliasing cut-off is the lower of the two Nyquist
    frequencies; the output has ceil(t * L / M) samples. The signal is
    extended by its edge values, so trial edges do not ring down to zero."""
    if fs_from <= 0 or fs_to <= 0:
        raise MicrotrainError(f"sampling rates must be positive, got {fs_from} -> {fs_to}")
    ratio = Fraction(fs_to / fs_from).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    x = np.asarray(x)
    if up == down:
        return x.astype(np.float32, copy=True)
    taps = _lowpass_taps(up, down)
    half = (len(taps) - 1) // 2
    pad = -(-half // up) + 1                      # input samples of edge padding covering the filter
    padded = np.concatenate([np.repeat(x[..., :1], pad, -1), x, np.repeat(x[..., -1:], pad, -1)], axis=-1)
    upsampled = np.zeros(padded.shape[:-1] + (padded.shape[-1] * up,), dtype=np.float64)
    upsampled[..., ::up] = padded
    filtered = _fft_convolve(upsampled, taps * up)  # gain `up` restores the amplitude lost to zero stuffing
    start = pad * up + half                         # skip the padding and the filter delay
    n_out = -(-x.shape[-1] * up // down)
    return filtered[..., start:start + n_out * down:down].astype(np.float32)


def _lowpass_taps(up: int, down: int) -> np.ndarray:
    rate = max(up, down)
    half = TAPS_PER_PHASE * rate
    n = np.arange(-half, half + 1)
    taps = np.sinc(n / rate) / rate * np.kaiser(2 * half + 1, KAISER_BETA)
    return taps / taps.sum()


def _fft_convolve(signal: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Full linear convolution along the last axis, all rows at once."""
    n = signal.shape[-1] + len(taps) - 1
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(signal, size, axis=-1) * np.fft.rfft(taps, size)
    return np.fft.irfft(spectrum, size, axis=-1)[..., :n]


def normalize_per_trial(x: np.ndarray, demean: bool = True, per_channel: bool = True,
                        eps: float = 1e-6) -> np.ndarray:
    """Scale each trial by its own standard deviation over time (per channel,
    or over all channels with per_channel=False to keep the channels' relative
    amplitudes), after removing the mean over time if `demean`."""
    x = np.asarray(x, dtype=np.float64)
    axes = (-1,) if per_channel else (-2, -1)
    if demean:
        x = x - x.mean(axis=axes, keepdims=True)
    scale = np.sqrt((x ** 2).mean(axis=axes, keepdims=True))   # the std when demeaned
    return (x / (scale + eps)).astype(np.float32)


def fit_zscore(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (mean, std) of `x[n, ch, t]` over trials and time."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise MicrotrainError(f"fit_zscore expects x[n, channels, time], got shape {x.shape}")
    return x.mean(axis=(0, 2)), x.std(axis=(0, 2))


def zscore(x: np.ndarray, stats=None, eps: float = 1e-6) -> np.ndarray:
    """(x - mean) / std per channel; `stats` from `fit_zscore` (of the
    training split, so test data is scaled like the data the model saw),
    or fitted on `x` itself when None."""
    mean, std = fit_zscore(x) if stats is None else stats
    return ((np.asarray(x) - mean[:, None]) / (std[:, None] + eps)).astype(np.float32)
