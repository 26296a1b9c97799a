"""Progressive-growing training schedule: every time-varying training parameter as a pure
function of the number of real images shown so far.

Semantics follow the official ``training_schedule`` (NVlabs/stylegan,
``training/training_loop.py``): training is split into phases of ``lod_training_kimg``
stable images followed by ``lod_transition_kimg`` fade-in images; the level of detail
``lod`` starts at ``resolution_log2 - log2(lod_initial_resolution)`` and decreases by one
per phase (linearly during each fade) down to 0. The trainer evaluates the schedule once
every ``minibatch_repeats`` minibatches and resets the optimizers' state when
:func:`optimizer_reset_needed` says so.

No TensorFlow here: the values feed ``tf.Variable`` assignments in the trainer.
"""

import dataclasses
import itertools
import math

# Official default snapshot/report interval per resolution (kimg), training_loop.py.
DEFAULT_TICK_KIMG_DICT = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


@dataclasses.dataclass(frozen=True)
class Phase:
    """Training parameters at one point of the schedule."""

    kimg: float        # thousands of real images shown so far
    lod: float         # level of detail: 0 = full resolution, resolution_log2 - 2 = 4x4
    resolution: int    # resolution being trained (during a fade: the new, higher one)
    fade: float        # lod - floor(lod) in [0, 1): weight of the lower resolution still blended in
                       # (0 = stable)
    minibatch: int     # global minibatch size, a multiple of num_replicas
    G_lrate: float     # generator learning rate
    D_lrate: float     # discriminator learning rate
    tick_kimg: float   # progress-report / snapshot interval

    @property
    def stable(self):
        """True when no lower resolution is blended in (``fade == 0``)."""
        return self.fade == 0.0


def _check_growth_args(resolution_log2, lod_initial_resolution, lod_training_kimg, lod_transition_kimg):
    """ValueErrors for growth settings that make no schedule; returns the initial lod (an int)."""
    if int(resolution_log2) != resolution_log2 or resolution_log2 < 2:
        raise ValueError(f"resolution_log2={resolution_log2!r}: must be an integer >= 2 "
                         "(4x4 images or larger)")
    initial_log2 = math.log2(lod_initial_resolution) if lod_initial_resolution > 0 else -1.0
    if initial_log2 != int(initial_log2) or initial_log2 < 2:
        raise ValueError(f"lod_initial_resolution={lod_initial_resolution!r}: must be a power of two >= 4")
    if initial_log2 > resolution_log2:
        raise ValueError(f"lod_initial_resolution={lod_initial_resolution} is above the dataset resolution "
                         f"{2 ** int(resolution_log2)}: lower it to at most {2 ** int(resolution_log2)}")
    if lod_training_kimg < 0 or lod_transition_kimg < 0:
        raise ValueError(f"lod_training_kimg={lod_training_kimg}, lod_transition_kimg={lod_transition_kimg}: "
                         "phase lengths must be >= 0")
    return int(resolution_log2) - int(initial_log2)


def training_schedule(cur_nimg, resolution_log2, num_replicas=1,
                      lod_initial_resolution=4,        # image resolution at the beginning
                      lod_training_kimg=600,           # kimg shown at each resolution before the next fades
                                                       # in
                      lod_transition_kimg=600,         # kimg over which the next resolution fades in
                      minibatch_base=16,               # global minibatch, split evenly among replicas
                      minibatch_dict=None,             # {resolution: global minibatch} overrides
                      max_minibatch_per_replica=None,  # {resolution: per-replica cap}
                                                       # (official max_minibatch_per_gpu)
                      G_lrate_base=0.001,              # generator learning rate
                      G_lrate_dict=None,               # {resolution: G learning rate} overrides
                      D_lrate_base=0.001,              # discriminator learning rate
                      D_lrate_dict=None,               # {resolution: D learning rate} overrides
                      lrate_rampup_kimg=0,             # linear learning-rate warm-up from 0 over this many
                                                       # kimg
                      tick_kimg_base=160,              # report interval where tick_kimg_dict has no entry
                      tick_kimg_dict=None):            # {resolution: tick kimg}; None = the official defaults
    """The :class:`Phase` after ``cur_nimg`` real images, for a dataset of ``2**resolution_log2`` pixels.

    ``lod = resolution_log2 - log2(lod_initial_resolution) - phase_idx - max(phase_kimg -
    lod_training_kimg, 0) / lod_transition_kimg``, clipped at 0, with ``phase_idx`` and
    ``phase_kimg`` the index of and the position in the current (stable + fade) phase.
    The minibatch is rounded down to a multiple of ``num_replicas`` and then capped at
    ``max_minibatch_per_replica[resolution] * num_replicas``.
    """
    if cur_nimg < 0:
        raise ValueError(f"cur_nimg={cur_nimg}: the number of images shown cannot be negative")
    if int(num_replicas) != num_replicas or num_replicas < 1:
        raise ValueError(f"num_replicas={num_replicas!r}: must be a positive integer")
    initial_lod = _check_growth_args(resolution_log2, lod_initial_resolution, lod_training_kimg,
                                     lod_transition_kimg)
    if lrate_rampup_kimg < 0:
        raise ValueError(f"lrate_rampup_kimg={lrate_rampup_kimg}: must be >= 0")
    minibatch_dict = minibatch_dict or {}
    max_minibatch_per_replica = max_minibatch_per_replica or {}
    G_lrate_dict = G_lrate_dict or {}
    D_lrate_dict = D_lrate_dict or {}
    tick_kimg_dict = DEFAULT_TICK_KIMG_DICT if tick_kimg_dict is None else tick_kimg_dict

    kimg = cur_nimg / 1000.0

    # Phase: lod_training_kimg stable, then lod_transition_kimg fading in the next resolution.
    phase_dur = lod_training_kimg + lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur

    # Level of detail and the resolution being trained.
    lod = float(initial_lod - phase_idx)
    if lod_transition_kimg > 0:
        lod -= max(phase_kimg - lod_training_kimg, 0.0) / lod_transition_kimg
    lod = max(lod, 0.0)
    level = int(math.floor(lod))
    resolution = 2 ** (int(resolution_log2) - level)
    fade = lod - level

    # Minibatch: a multiple of the replica count, optionally capped per replica.
    minibatch = int(minibatch_dict.get(resolution, minibatch_base))
    minibatch -= minibatch % num_replicas
    if resolution in max_minibatch_per_replica:
        minibatch = min(minibatch, int(max_minibatch_per_replica[resolution]) * num_replicas)
    if minibatch < num_replicas:
        raise ValueError(f"minibatch {minibatch_dict.get(resolution, minibatch_base)} "
                         f"at {resolution}x{resolution} (after the per-replica cap: {minibatch}) "
                         f"is smaller than num_replicas={num_replicas}: "
                         "every replica needs at least one image")

    # Learning rates, with the optional linear ramp-up.
    G_lrate = float(G_lrate_dict.get(resolution, G_lrate_base))
    D_lrate = float(D_lrate_dict.get(resolution, D_lrate_base))
    if lrate_rampup_kimg > 0:
        rampup = min(kimg / lrate_rampup_kimg, 1.0)
        G_lrate *= rampup
        D_lrate *= rampup

    tick_kimg = float(tick_kimg_dict.get(resolution, tick_kimg_base))
    return Phase(kimg=kimg, lod=lod, resolution=resolution, fade=fade, minibatch=minibatch,
                 G_lrate=G_lrate, D_lrate=D_lrate, tick_kimg=tick_kimg)


def optimizer_reset_needed(prev_lod, lod):
    """Whether to reset the optimizers' state (Adam moments) before training at ``lod``.

    Official rule: reset when ``floor(lod)`` or ``ceil(lod)`` differs from the previous
    evaluation, i.e. when a fade begins (new layers appear) and when it ends (the old ones
    leave). The official loop starts from ``prev_lod = -1.0`` so the first call resets too.
    """
    return math.floor(lod) != math.floor(prev_lod) or math.ceil(lod) != math.ceil(prev_lod)


def gs_beta(minibatch, G_smoothing_kimg=10.0):
    """Decay of the generator moving average ``Gs = lerp(G, Gs, beta)`` after one step of
    ``minibatch`` images.

    ``0.5 ** (minibatch / (G_smoothing_kimg * 1000))``: a half-life of ``G_smoothing_kimg``
    thousand images whatever the minibatch; ``G_smoothing_kimg = 0`` disables smoothing (beta 0).
    """
    if minibatch < 0:
        raise ValueError(f"minibatch={minibatch}: must be >= 0")
    if G_smoothing_kimg < 0:
        raise ValueError(f"G_smoothing_kimg={G_smoothing_kimg}: must be >= 0 (0 disables smoothing)")
    if G_smoothing_kimg == 0:
        return 0.0
    return 0.5 ** (minibatch / (G_smoothing_kimg * 1000.0))


def schedule_phases(schedule_fn, resolution_log2, until_nimg=math.inf):
    """The distinct phases of ``schedule_fn(nimg, resolution_log2)`` in order, up to the full resolution or to
    ``until_nimg`` images: each level's fade-in (where the schedule has one) and stable part, as the
    :class:`Phase` at the middle of that stretch (the last one, which never ends, at its start). The
    schedule's errors at any of them (e.g. a minibatch that cannot feed the replicas) are raised."""

    def key(nimg):
        phase = schedule_fn(nimg, resolution_log2)
        return phase.resolution, phase.stable

    final = (2 ** resolution_log2, True)
    starts = [0]
    while key(starts[-1]) != final:
        current, low = key(starts[-1]), starts[-1]
        stride = max(schedule_fn(low, resolution_log2).minibatch, 1) * 256
        high = min(low + stride, until_nimg)
        while key(high) == current and high < until_nimg:  # walk ahead, then bisect to the next stretch
            low, high = high, min(high + stride, until_nimg)
        if key(high) == current:  # the run ends in this stretch
            break
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if key(middle) == current else (low, middle)
        starts.append(high)
    middles = [(first + next_first - 1) // 2
               for first, next_first in itertools.pairwise(starts)] + [starts[-1]]
    return [schedule_fn(nimg, resolution_log2) for nimg in middles]


class Every:
    """An interval in images (``None`` or 0: never): :meth:`due` once ``nimg`` reaches the next multiple of it
    after ``start_nimg``, then the multiple after that."""

    def __init__(self, interval_nimg, start_nimg):
        self.interval = interval_nimg or 0
        self.next = self._after(start_nimg)

    def _after(self, nimg):
        return (int(nimg) // self.interval + 1) * self.interval if self.interval > 0 else math.inf

    def due(self, nimg):
        """True (and the next multiple ahead) when ``nimg`` has reached the next multiple."""
        if nimg < self.next:
            return False
        self.next = self._after(nimg)
        return True
