"""tf_stylegan.training.schedule against hand-computed points of the official schedules.

FFHQ 8-GPU at 1024x1024 (resolution_log2 = 10, lod_initial_resolution = 8, 600 + 600 kimg per phase):
  initial lod = 10 - log2(8) = 7; phase k (k = 0, 1, ...) covers [1200 k, 1200 (k + 1)) kimg:
  stable at lod 7 - k for 600 kimg, then lod falls linearly to 6 - k over 600 kimg.
  Resolution = 2**(10 - floor(lod)): 8 at lod 7, 16 during the first fade and at lod 6, ...
  lod first reaches 0 at the end of the 7th phase: 7 * 1200 = 8400 kimg.
"""


import functools

import pytest

from tf_stylegan.training import schedule
from tf_stylegan.training.schedule import training_schedule

# ---------------------------------------------------------------- the official presets (train.py)

# The spec, hard-coded from the official code: NVlabs/stylegan at its newest commit
# 1e0d5c781384ef12b50ef20a62fee5d78b38e88f, train.py (last changed by 33ada74; its learning rates by
# 7a1830884a19c41744eb65feb8aa80c9e8375ab8 "Better learning rate progression for 1-4 GPUs", which moved
# sched.G_lrate_dict / D_lrate_dict out of the per-GPU-count lines into "Default options", so every GPU
# count uses {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}), StyleGAN branch ("if 1:"), plus the
# defaults the presets do not override: training/training_loop.py (training_schedule(), training_loop()),
# training/loss.py (D_logistic_simplegp, D_wgan_gp) and training/networks_stylegan.py (G_style).
# Keys are gin selectors; values are what the official run uses, bound in train.py or by default.
_OFFICIAL_SCHEDULE_DEFAULTS = {  # training_loop.py, training_schedule() keyword defaults
    "lod_initial_resolution": 4, "lod_training_kimg": 600, "lod_transition_kimg": 600,
    "minibatch_base": 16, "minibatch_dict": {}, "max_minibatch_per_replica": {},  # max_minibatch_per_gpu
    "G_lrate_base": 0.001, "G_lrate_dict": {}, "D_lrate_base": 0.001, "D_lrate_dict": {},
    "lrate_rampup_kimg": 0, "tick_kimg_base": 160,
    "tick_kimg_dict": {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20},
}
_OFFICIAL_COMMON = {
    # training_loop() defaults (G_smoothing_kimg, minibatch_repeats); '-ffhq' / '-celebahq': mirror_augment
    "train.G_smoothing_kimg": 10.0, "train.minibatch_repeats": 4, "train.mirror_augment": True,
    # "Default options": train.total_kimg = 25000
    "train.total_kimg": 25000,
    # G_style defaults (config F)
    "Generator.truncation_psi": 0.7, "Generator.truncation_cutoff": 8, "Generator.style_mixing_prob": 0.9,
    "Generator.dlatent_avg_beta": 0.995,
}
_OFFICIAL_FFHQ_LRATE = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}  # "Default options"
_OFFICIAL_8GPU = {  # desc += '-8gpu'
    "minibatch_base": 32, "minibatch_dict": {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}}
_OFFICIAL_1GPU = {  # #desc += '-1gpu'
    "minibatch_base": 4, "minibatch_dict": {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}}
_OFFICIAL_WGANGP_LRATE = {128: 0.0015, 256: 0.002, 512: 0.002, 1024: 0.002}  # '-wgangp': min(v, 0.002)


def _official(gpus, lrate):
    sched = dict(_OFFICIAL_SCHEDULE_DEFAULTS, lod_initial_resolution=8,  # "Default options"
                 G_lrate_dict=lrate, D_lrate_dict=lrate, **gpus)
    return {**_OFFICIAL_COMMON, **{f"training_schedule.{k}": v for k, v in sched.items()}}


OFFICIAL_PRESETS = {  # gin file: (official bindings, (loss class, its official arguments))
    "ffhq_1024_8gpu.gin": (_official(_OFFICIAL_8GPU, _OFFICIAL_FFHQ_LRATE),
                           # D_logistic_simplegp(r1_gamma=10.0): v1 has no lazy R1
                           ("LogisticR1", {"r1_gamma": 10.0, "r1_interval": 1})),
    "ffhq_1024_1gpu.gin": (_official(_OFFICIAL_1GPU, _OFFICIAL_FFHQ_LRATE),
                           ("LogisticR1", {"r1_gamma": 10.0, "r1_interval": 1})),
    # '-celebahq' + '-8gpu' + '-wgangp': G_wgan / D_wgan_gp (wgan_lambda=10.0, wgan_epsilon=0.001,
    # wgan_target=1.0)
    "celebahq_1024_wgangp.gin": (_official(_OFFICIAL_8GPU, _OFFICIAL_WGANGP_LRATE),
                                 ("WGANGP", {"wgan_lambda": 10.0, "wgan_epsilon": 0.001,
                                             "wgan_target": 1.0})),
}




def official_schedule(gin_file):
    """training_schedule keyword arguments of an official preset (the spec above)."""
    official, _ = OFFICIAL_PRESETS[gin_file]
    prefix = "training_schedule."
    return {key[len(prefix):]: value for key, value in official.items() if key.startswith(prefix)}


FFHQ = official_schedule("ffhq_1024_8gpu.gin")


def ffhq(kimg, num_replicas=8):
    return training_schedule(round(kimg * 1000), 10, num_replicas=num_replicas, **FFHQ)


# ---------------------------------------------------------------- FFHQ 8-GPU key points

def test_start_is_8x8_at_lod_7():
    p = ffhq(0)
    assert (p.kimg, p.lod, p.resolution, p.fade, p.minibatch) == (0.0, 7.0, 8, 0.0, 256)
    assert (p.G_lrate, p.D_lrate, p.tick_kimg) == (0.001, 0.001, 140.0)
    assert p.stable


def test_first_600_kimg_are_stable_at_8x8():
    for kimg in (1, 300, 599, 599.999, 600):
        p = ffhq(kimg)
        assert (p.lod, p.resolution, p.fade, p.minibatch) == (7.0, 8, 0.0, 256), kimg


def test_fade_to_16x16():
    # 600.001 kimg: lod = 7 - 0.001 / 600 = 6.9999983: 16x16 layers are in, almost all weight on 8x8
    p = ffhq(600.001)
    assert p.resolution == 16 and p.minibatch == 128 and p.tick_kimg == 120.0
    assert p.lod == pytest.approx(7 - 0.001 / 600, abs=1e-9)
    assert p.fade == pytest.approx(1 - 0.001 / 600, abs=1e-9)
    # 900 kimg: lod = 7 - 300 / 600 = 6.5
    p = ffhq(900)
    assert (p.lod, p.resolution, p.fade, p.minibatch) == (6.5, 16, 0.5, 128)
    # 1050 kimg: lod = 7 - 450 / 600 = 6.25
    assert ffhq(1050).lod == 6.25 and ffhq(1050).fade == 0.25


def test_16x16_stable_from_1200_kimg():
    for kimg in (1200, 1500, 1800):
        p = ffhq(kimg)
        assert (p.lod, p.resolution, p.fade, p.minibatch) == (6.0, 16, 0.0, 128), kimg
    # 2100 kimg: phase 1, 300 kimg into the fade to 32x32 -> lod 5.5
    assert (ffhq(2100).lod, ffhq(2100).resolution, ffhq(2100).minibatch) == (5.5, 32, 64)


def test_full_resolution_first_reached_at_8400_kimg():
    # 7800 kimg: lod 1 (512x512 stable, the fade to 1024 starts)
    p = ffhq(7800)
    assert (p.lod, p.resolution, p.fade) == (1.0, 512, 0.0)
    # one image before 8400 kimg: lod = 1 - 599.999 / 600 = 1 / 600000 > 0 (1024 layers in, still fading)
    p = training_schedule(8_399_999, 10, num_replicas=8, **FFHQ)
    assert p.lod == pytest.approx(1 / 600_000, rel=1e-6) and p.lod > 0
    assert p.resolution == 1024
    p = ffhq(8400)
    assert (p.lod, p.resolution, p.fade) == (0.0, 1024, 0.0)


def test_end_of_training():
    p = ffhq(25_000)  # official total_kimg
    assert (p.lod, p.resolution, p.fade, p.minibatch) == (0.0, 1024, 0.0, 32)
    assert (p.G_lrate, p.D_lrate, p.tick_kimg) == (0.003, 0.003, 20.0)


def test_per_resolution_values_at_each_stable_phase():
    # Phase k is stable at lod 7 - k from 1200 k kimg: resolution 2**(3 + k).
    # resolution: (minibatch, lrate, tick_kimg), from the train.py dicts / training_loop defaults
    expected = {
        8: (256, 0.001, 140), 16: (128, 0.001, 120), 32: (64, 0.001, 100), 64: (32, 0.001, 80),
        128: (32, 0.0015, 60), 256: (32, 0.002, 40), 512: (32, 0.003, 30), 1024: (32, 0.003, 20),
    }
    for k in range(8):
        p = ffhq(1200 * k + 100)  # 100 kimg into the stable part
        assert p.resolution == 2 ** (3 + k) and p.lod == 7 - k and p.fade == 0.0
        assert (p.minibatch, p.G_lrate, p.D_lrate, p.tick_kimg) == (
            expected[p.resolution][0], expected[p.resolution][1], expected[p.resolution][1],
            expected[p.resolution][2]), p


def test_celebahq_learning_rates_are_capped_at_0_002():
    lr = {}
    for k in range(8):
        p = training_schedule(1_200_000 * k, 10, num_replicas=8,
                              **official_schedule("celebahq_1024_wgangp.gin"))
        lr[p.resolution] = (p.G_lrate, p.D_lrate)
    assert lr == {8: (0.001, 0.001), 16: (0.001, 0.001), 32: (0.001, 0.001), 64: (0.001, 0.001),
                  128: (0.0015, 0.0015), 256: (0.002, 0.002), 512: (0.002, 0.002), 1024: (0.002, 0.002)}


def test_ffhq_1gpu_values():
    # Official since 7a18308: the 1-GPU line sets only the minibatches; learning rates as with 8 GPUs.
    p = training_schedule(0, 10, **official_schedule("ffhq_1024_1gpu.gin"))
    assert (p.resolution, p.minibatch, p.G_lrate) == (8, 128, 0.001)
    p = training_schedule(7_800_000, 10, **official_schedule("ffhq_1024_1gpu.gin"))   # 512 stable
    assert (p.resolution, p.minibatch, p.G_lrate) == (512, 4, 0.003)
    # 1024: minibatch_base 4, lr 0.003
    p = training_schedule(25_000_000, 10, **official_schedule("ffhq_1024_1gpu.gin"))
    assert (p.resolution, p.minibatch, p.G_lrate, p.D_lrate) == (1024, 4, 0.003, 0.003)


def test_lower_dataset_resolution():
    # 256x256 (log2 8) with the FFHQ preset: initial lod 8 - 3 = 5; 900 kimg -> 4.5 at 16x16; lod 0 at
    # 5 * 1200
    assert ((ffhq_256 := training_schedule(0, 8, num_replicas=8, **FFHQ)).lod == 5.0
            and ffhq_256.resolution == 8)
    p = training_schedule(900_000, 8, num_replicas=8, **FFHQ)
    assert (p.lod, p.resolution) == (4.5, 16)
    assert training_schedule(6_000_000, 8, num_replicas=8, **FFHQ).lod == 0.0
    assert training_schedule(5_999_000, 8, num_replicas=8, **FFHQ).lod > 0.0


# ---------------------------------------------------------------- minibatch rounding and caps

def test_minibatch_rounded_down_to_a_multiple_of_num_replicas():
    assert ffhq(0, num_replicas=6).minibatch == 252       # 256 - 256 % 6 = 256 - 4
    assert ffhq(25_000, num_replicas=6).minibatch == 30   # 32 - 32 % 6 = 32 - 2
    assert ffhq(25_000, num_replicas=32).minibatch == 32
    one_gpu = official_schedule("ffhq_1024_1gpu.gin")
    assert training_schedule(0, 10, num_replicas=3, **one_gpu).minibatch == 126       # 128 - 2
    assert training_schedule(7_800_000, 10, num_replicas=3, **one_gpu).minibatch == 3  # 512x512: 4 - 1
    with pytest.raises(ValueError, match="num_replicas=8"):  # 512x512: 4 images cannot feed 8 replicas
        training_schedule(7_800_000, 10, num_replicas=8, **one_gpu)


def test_max_minibatch_per_replica():
    # ProGAN CelebA-HQ fp32 caps {256: 16, 512: 8, 1024: 4} per GPU; initial lod 10 - 2 = 8, so
    # 256x256 is stable at 6 * 1200 = 7200 kimg, 512 at 8400, 1024 from 9600.
    progan = dict(lod_initial_resolution=4, minibatch_base=32,
                  max_minibatch_per_replica={256: 16, 512: 8, 1024: 4},
                  minibatch_dict={4: 512, 8: 256, 16: 128, 32: 64, 64: 32})
    minibatch = {r: training_schedule(nimg, 10, num_replicas=1, **progan).minibatch
                 for r, nimg in ((128, 6_000_000), (256, 7_200_000), (512, 8_400_000), (1024, 9_600_000))}
    assert minibatch == {128: 32, 256: 16, 512: 8, 1024: 4}
    # with 8 replicas the caps (128, 64, 32) do not bind: 32 everywhere
    assert training_schedule(9_600_000, 10, num_replicas=8, **progan).minibatch == 32
    assert training_schedule(9_600_000, 10, num_replicas=2, **progan).minibatch == 8  # min(32, 4 * 2)
    assert (training_schedule(9_600_000, 10, **progan).lod == 0
            < training_schedule(9_599_000, 10, **progan).lod)


# ---------------------------------------------------------------- other parameters

def test_learning_rate_rampup():
    # rampup = min(kimg / 100, 1): 0 at the start, 0.25 at 25 kimg, 1 from 100 kimg
    for kimg, factor in ((0, 0.0), (25, 0.25), (100, 1.0), (150, 1.0)):
        p = training_schedule(kimg * 1000, 10, lrate_rampup_kimg=100, G_lrate_base=0.002, D_lrate_base=0.004)
        assert (p.G_lrate, p.D_lrate) == pytest.approx((0.002 * factor, 0.004 * factor)), kimg


def test_official_defaults():
    # training_loop.py defaults: start at 4x4 (lod 8 for 1024), minibatch 16, lr 0.001, tick 160 at 4x4
    p = training_schedule(0, 10)
    assert (p.lod, p.resolution, p.minibatch, p.G_lrate, p.tick_kimg) == (8.0, 4, 16, 0.001, 160.0)
    # an explicit empty tick dict falls back to tick_kimg_base (the official BENCHMARK mode)
    assert training_schedule(0, 10, tick_kimg_base=1, tick_kimg_dict={}).tick_kimg == 1.0


def test_no_growing():
    # official "-nogrowing": lod_initial_resolution = 1024 and 0-kimg phases -> lod 0 throughout
    for nimg in (0, 5_000_000):
        p = training_schedule(nimg, 10, lod_initial_resolution=1024, lod_training_kimg=0,
                              lod_transition_kimg=0)
        assert (p.lod, p.resolution, p.fade) == (0.0, 1024, 0.0)
    # growth with 0-kimg phases never leaves the initial resolution (official: phase_idx 0 when
    # phase_dur is 0)
    assert training_schedule(10 ** 12, 10, lod_initial_resolution=8, lod_training_kimg=0,
                             lod_transition_kimg=0).resolution == 8
    # no fade (transition 0): lod drops by whole steps every 600 kimg
    assert [training_schedule(k * 1000, 10, lod_initial_resolution=8, lod_transition_kimg=0).lod
            for k in (0, 599, 600, 1199, 1200)] == [7.0, 7.0, 6.0, 6.0, 5.0]
    assert training_schedule(4_200_000, 10, lod_initial_resolution=8,
                             lod_transition_kimg=0).lod == 0.0  # 7 * 600


def test_nonsense_is_rejected():
    with pytest.raises(ValueError, match="negative"):
        training_schedule(-1, 10)
    with pytest.raises(ValueError, match="resolution_log2"):
        training_schedule(0, 1)
    with pytest.raises(ValueError, match="above the dataset resolution"):
        training_schedule(0, 5, lod_initial_resolution=64)
    with pytest.raises(ValueError, match="power of two"):
        training_schedule(0, 10, lod_initial_resolution=12)
    with pytest.raises(ValueError, match="power of two"):
        training_schedule(0, 10, lod_initial_resolution=2)
    with pytest.raises(ValueError, match="num_replicas"):
        training_schedule(0, 10, num_replicas=0)
    with pytest.raises(ValueError, match="smaller than num_replicas"):
        training_schedule(0, 10, num_replicas=4, minibatch_base=3)
    with pytest.raises(ValueError, match="phase lengths"):
        training_schedule(0, 10, lod_training_kimg=-600)


# ---------------------------------------------------------------- optimizer reset

def test_optimizer_reset_rule():
    reset = schedule.optimizer_reset_needed
    assert reset(-1.0, 7.0)              # first evaluation (the official loop starts from prev_lod = -1)
    assert not reset(7.0, 7.0)           # stable
    assert reset(7.0, 6.9999983)         # fade begins: floor 7 -> 6
    assert not reset(6.9999983, 6.5)     # inside the fade: floor 6, ceil 7 throughout
    assert not reset(6.5, 6.0000017)
    assert reset(6.0000017, 6.0)         # fade ends: ceil 7 -> 6
    assert not reset(6.0, 6.0)
    assert reset(0.5, 0.0) and not reset(0.0, 0.0)


def test_optimizer_resets_in_the_official_loop():
    # The official loop evaluates the schedule, then runs 4 minibatches (D_repeats 1): step 4 * minibatch.
    # 8x8 (minibatch 256): step 1024 -> first evaluation past 600,000 images is 586 * 1024 = 600,064 (fade
    # begins, 16x16, step 512); first at or past 1,200,000 is 600,064 + 1172 * 512 = 1,200,128 (fade ends);
    # first past 1,800,000 is 1,200,128 + 1172 * 512 = 1,800,192 (32x32, step 256); first at or past
    # 2,400,000 is 1,800,192 + 2343 * 256 = 2,400,000 exactly (lod 5).
    nimg, prev_lod, resets = 0, -1.0, []
    while nimg < 2_500_000:
        p = training_schedule(nimg, 10, num_replicas=8, **FFHQ)
        if schedule.optimizer_reset_needed(prev_lod, p.lod):
            resets.append(nimg)
        prev_lod = p.lod
        nimg += 4 * p.minibatch
    assert resets == [0, 600_064, 1_200_128, 1_800_192, 2_400_000]


# ---------------------------------------------------------------- Gs moving average

def test_gs_beta():
    # 0.5 ** (minibatch / 10000): 32 -> 2**-0.0032 = 0.9977844; 256 -> 2**-0.0256 = 0.9824119
    assert schedule.gs_beta(32) == pytest.approx(0.9977844, abs=1e-7)
    assert schedule.gs_beta(256) == pytest.approx(0.9824119, abs=1e-7)
    assert schedule.gs_beta(10_000) == pytest.approx(0.5)             # one half-life per 10 kimg
    assert schedule.gs_beta(20_000) == pytest.approx(0.25)
    assert schedule.gs_beta(32, G_smoothing_kimg=1.0) == pytest.approx(0.5 ** 0.032)
    assert schedule.gs_beta(32) ** (10_000 / 32) == pytest.approx(0.5)  # same half-life at any minibatch
    assert schedule.gs_beta(32, G_smoothing_kimg=0.0) == 0.0           # official: no smoothing
    with pytest.raises(ValueError):
        schedule.gs_beta(32, G_smoothing_kimg=-1.0)


# ---------------------------------------------------------------- presets

def _parse_preset(gin_file):
    import pathlib

    import gin
    from tf_stylegan.training import configurables

    gin.clear_config()
    configurables.parse([pathlib.Path(__file__).resolve().parents[1] / "gin" / gin_file])
    return configurables


def _bound(selector):
    """The value a gin selector is bound to, or _UNBOUND."""
    import gin

    try:
        return gin.query_parameter(selector)
    except ValueError:
        return _UNBOUND


_UNBOUND = object()


def _defaults(fn):
    import inspect

    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _effective(selector, defaults):
    ("The value the run uses: the gin binding, else the project's default (None dicts as the schedule "
     "reads them).")
    value = _bound(selector)
    if value is _UNBOUND:
        value = defaults[selector.split(".", 1)[1]]
    if value is None and selector.startswith("training_schedule."):  # dict arguments: None = the default dict
        return schedule.DEFAULT_TICK_KIMG_DICT if selector.endswith(".tick_kimg_dict") else {}
    return value


@pytest.mark.parametrize("gin_file", sorted(OFFICIAL_PRESETS))
def test_gin_presets_hold_the_official_train_py_values(gin_file):
    """Every schedule / loss / training-loop binding of each preset equals the official train.py value."""
    import gin
    from tf_stylegan.nn import generator
    from tf_stylegan.training import losses

    official, (loss_name, loss_args) = OFFICIAL_PRESETS[gin_file]
    try:
        configurables = _parse_preset(gin_file)
        defaults = {"train": _defaults(configurables.train),
                    "training_schedule": _defaults(schedule.training_schedule),
                    "Generator": _defaults(generator.Generator.__init__)}
        # The table covers every argument of the schedule (a new one must be added to the spec).
        schedule_args = set(_defaults(schedule.training_schedule)) - {"num_replicas"}
        assert {k.split(".", 1)[1] for k in official if k.startswith("training_schedule.")} == schedule_args
        for selector, value in official.items():
            actual = _effective(selector, defaults[selector.split(".", 1)[0]])
            assert actual == value and type(actual) in (type(value), int, float), (
                gin_file, selector, actual, value)
        # The loss: the configurable bound to train.loss (default LogisticR1) and all its arguments.
        loss = _bound("train.loss")
        assert (loss_name if loss is _UNBOUND else loss.configurable.name) == loss_name, gin_file
        loss_defaults = _defaults(getattr(losses, loss_name).__init__)
        assert set(loss_defaults) == set(loss_args), (gin_file, loss_name)
        for arg, value in loss_args.items():
            assert _effective(f"{loss_name}.{arg}", loss_defaults) == value, (gin_file, loss_name, arg)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("gin_file, replicas, expected", [
    # resolution: (minibatch, G lrate = D lrate), official train.py @ 1e0d5c7 (7a18308 learning rates)
    ("ffhq_1024_1gpu.gin", 1, {8: (128, 0.001), 16: (128, 0.001), 32: (64, 0.001), 64: (32, 0.001),
                               128: (16, 0.0015), 256: (8, 0.002), 512: (4, 0.003), 1024: (4, 0.003)}),
    ("ffhq_1024_8gpu.gin", 8, {8: (256, 0.001), 16: (128, 0.001), 32: (64, 0.001), 64: (32, 0.001),
                               128: (32, 0.0015), 256: (32, 0.002), 512: (32, 0.003), 1024: (32, 0.003)}),
    ("celebahq_1024_wgangp.gin", 8, {8: (256, 0.001), 16: (128, 0.001), 32: (64, 0.001), 64: (32, 0.001),
                                     128: (32, 0.0015), 256: (32, 0.002), 512: (32, 0.002),
                                     1024: (32, 0.002)}),
])
def test_gin_preset_schedules_give_the_official_learning_rates(gin_file, replicas, expected):
    """The gin-configured training_schedule, at each stable resolution of a 1024x1024 run."""
    import gin

    try:
        configurables = _parse_preset(gin_file)
        got = {}
        for k in range(8):  # 100 kimg into the stable part of phase k: resolution 2**(3 + k)
            p = configurables.training_schedule(1_200_000 * k + 100_000, 10, num_replicas=replicas)
            assert p.fade == 0.0
            got[p.resolution] = (p.minibatch, p.G_lrate)
            assert p.D_lrate == p.G_lrate, (gin_file, p)
        assert got == expected
    finally:
        gin.clear_config()


def test_official_1gpu_learning_rates_are_those_of_8gpu():
    # 7a18308: one learning-rate progression for every GPU count; only the minibatches depend on it.
    assert OFFICIAL_PRESETS["ffhq_1024_1gpu.gin"][0]["training_schedule.G_lrate_dict"] == \
        OFFICIAL_PRESETS["ffhq_1024_8gpu.gin"][0]["training_schedule.G_lrate_dict"] == \
        {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


def test_phase_is_frozen():
    p = ffhq(0)
    with pytest.raises(AttributeError):
        p.lod = 3.0


def test_every_is_due_at_each_multiple_of_its_interval_once():
    checkpoints = schedule.Every(10_000, start_nimg=4_000)  # a run resumed at 4 kimg
    due = [nimg for nimg in range(4_000, 40_001, 3_000) if checkpoints.due(nimg)]
    assert due == [10_000, 22_000, 31_000, 40_000]  # the first step at or past 10, 20, 30, 40 kimg
    assert checkpoints.next == 50_000
    never = schedule.Every(None, start_nimg=0)
    assert not any(never.due(nimg) for nimg in (0, 10 ** 12)) and not schedule.Every(0, 0).due(10 ** 12)


def _labels(phases):
    return [(p.resolution, "stable" if p.stable else "fade") for p in phases]


def test_schedule_phases_walks_every_fade_and_stable_phase_to_the_full_resolution():
    emoji_like = functools.partial(training_schedule, lod_initial_resolution=8, lod_training_kimg=20,
                                   lod_transition_kimg=20, minibatch_dict={8: 32, 16: 32, 32: 16, 64: 16})
    phases = schedule.schedule_phases(emoji_like, 6)
    assert _labels(phases) == [(8, "stable"), (16, "fade"), (16, "stable"), (32, "fade"), (32, "stable"),
                               (64, "fade"), (64, "stable")]
    assert [p.minibatch for p in phases] == [32, 32, 32, 16, 16, 16, 16]
    assert [p.fade for p in phases if not p.stable] == pytest.approx([0.5, 0.5, 0.5], abs=0.02)  # mid-fade
    assert phases[-1].lod == 0 and phases[0].lod == 3
    no_fades = functools.partial(training_schedule, lod_initial_resolution=4, lod_training_kimg=1,
                                 lod_transition_kimg=0)
    assert _labels(schedule.schedule_phases(no_fades, 4)) == [(4, "stable"), (8, "stable"), (16, "stable")]


def test_schedule_phases_stop_at_until_nimg_and_at_a_schedule_that_never_grows():
    emoji_like = functools.partial(training_schedule, lod_initial_resolution=8, lod_training_kimg=20,
                                   lod_transition_kimg=20)
    assert _labels(schedule.schedule_phases(emoji_like, 6, until_nimg=45_000)) == [
        (8, "stable"), (16, "fade"), (16, "stable")]  # 40 kimg: 16x16 stable; 60 kimg: 32x32 fades in
    never_grows = functools.partial(training_schedule, lod_initial_resolution=8, lod_training_kimg=0,
                                    lod_transition_kimg=0)
    assert _labels(schedule.schedule_phases(never_grows, 6, until_nimg=10 ** 7)) == [(8, "stable")]
