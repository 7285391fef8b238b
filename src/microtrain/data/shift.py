"""Pseudo-subjects for the *simulated shift* calibration protocol.

No multi-subject labelled EEG set ships in an installable package, so a
"new subject" is simulated: a seeded transform of real recordings that
mimics what changes between sessions/subjects at the sensor level. Results
obtained on these must be labelled "simulated shift".

For a pseudo-subject drawn with `sample_shift(n_channels, fs, seed)`:

    x'[c, t] = sum_k M[c, k] * g[k] * x[k, t - s]  +  n[c, t]

* g — per-channel gain (electrode impedance, amplifier gain):
      log g[k] ~ Normal(0, gain_log_std)                          default 0.2 (~ +-20 %)
* M — near-identity spatial mixing (electrode displacement picks up its
      neighbours): M = I + E, E[c, k] ~ Normal(0, mixing_std) off the diagonal, 0 on it
                                                                  default 0.1
* s — time shift in samples (latency difference), one per subject, uniform
      integer in [-max_shift_s * fs, +max_shift_s * fs]; edges are extended
      with the trial's first/last value                           default 0.05 s
* n — additive coloured noise, power spectrum ~ 1/f^noise_exponent
      (1 = pink, EEG-like background), independent per trial and channel,
      RMS = noise_rel_rms * that channel's RMS (of the mixed signal over the
      whole set, after removing its per-trial mean)              defaults 1.0, 0.3

The subject's parameters depend only on `seed`; the noise of trial i
depends on (seed, i), so a pseudo-subject is reproducible trial by trial."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MicrotrainError


@dataclass(frozen=True)
class ShiftParams:
    """Magnitudes of the simulated between-subject shift (see module doc)."""
    gain_log_std: float = 0.2
    mixing_std: float = 0.1
    max_shift_s: float = 0.05
    noise_rel_rms: float = 0.3
    noise_exponent: float = 1.0


@dataclass(frozen=True)
class SubjectShift:
    """One pseudo-subject's drawn parameters."""
    seed: int
    gains: np.ndarray        # [channels]
    mixing: np.ndarray       # [channels, channels], near identity
    shift_samples: int
    noise_rel_rms: float
    noise_exponent: float


def sample_shift(n_channels: int, fs: float, seed: int, params: ShiftParams = ShiftParams()) -> SubjectShift:
    """Draw a pseudo-subject's gains, mixing and time shift from `seed`."""
    if n_channels < 1 or fs <= 0:
        raise MicrotrainError(f"need n_channels >= 1 and fs > 0, got {n_channels}, {fs}")
    rng = np.random.default_rng([int(seed), 0])
    gains = np.exp(rng.normal(0.0, params.gain_log_std, n_channels))
    off_diagonal = rng.normal(0.0, params.mixing_std, (n_channels, n_channels))
    np.fill_diagonal(off_diagonal, 0.0)
    max_shift = int(round(params.max_shift_s * fs))
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
    return SubjectShift(int(seed), gains, np.eye(n_channels) + off_diagonal, shift,
                        params.noise_rel_rms, params.noise_exponent)


def make_pseudo_subject(x: np.ndarray, fs: float, seed: int,
                        params: ShiftParams = ShiftParams()) -> tuple[np.ndarray, SubjectShift]:
    """(x' = the transformed trials x[n, ch, t], the drawn SubjectShift)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise MicrotrainError(f"make_pseudo_subject expects x[n, channels, time], got shape {x.shape}")
    subject = sample_shift(x.shape[1], fs, seed, params)
    return apply_shift(x, subject), subject


def apply_shift(x: np.ndarray, subject: SubjectShift) -> np.ndarray:
    """Apply a drawn SubjectShift to x[n, ch, t] (float32 result)."""
    x = np.asarray(x, dtype=np.float64)
    mixed = np.einsum("ck,nkt->nct", subject.mixing * subject.gains[None, :], x)
    shifted = shift_time(mixed, subject.shift_samples)
    if subject.noise_rel_rms > 0:
        centred = shifted - shifted.mean(axis=-1, keepdims=True)
        channel_rms = np.sqrt((centred ** 2).mean(axis=(0, 2)))
        noise = coloured_noise(x.shape, subject.noise_exponent, subject.seed)
        shifted = shifted + noise * (subject.noise_rel_rms * channel_rms)[None, :, None]
    return shifted.astype(np.float32)


def shift_time(x: np.ndarray, shift: int) -> np.ndarray:
    """Delay (shift > 0) or advance (shift < 0) along the last axis, edges
    extended with the first/last value (no wrap-around)."""
    if shift == 0:
        return x.copy()
    t = x.shape[-1]
    index = np.clip(np.arange(t) - shift, 0, t - 1)
    return x[..., index]


def coloured_noise(shape: tuple, exponent: float, seed: int) -> np.ndarray:
    """Unit-RMS noise with power ~ 1/f^exponent along the last axis (zero
    mean per row), independent per row; trial i of `shape[0]` uses the
    generator seeded with (seed, 1, i)."""
    n_trials, t = shape[0], shape[-1]
    freqs = np.fft.rfftfreq(t)
    amplitude = np.zeros_like(freqs)
    amplitude[1:] = freqs[1:] ** (-exponent / 2.0)   # amplitude ~ f^(-a/2) gives power ~ f^(-a)
    rows = []
    for i in range(n_trials):
        rng = np.random.default_rng([int(seed), 1, i])
        white = rng.standard_normal(tuple(shape[1:-1]) + (t,))
        rows.append(np.fft.irfft(np.fft.rfft(white, axis=-1) * amplitude, t, axis=-1))
    noise = np.stack(rows)
    return noise / np.sqrt((noise ** 2).mean(axis=-1, keepdims=True))
