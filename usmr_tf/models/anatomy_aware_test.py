import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.layers.discriminators import LatentDiscriminator, MultiScaleDiscriminator
from usmr_tf.models.anatomy_aware import AnatomyAwareSynthesis
from usmr_tf.models.conftest import TINY, assert_fit_runs_power_iteration
from usmr_tf.models.generators import AnatomyAwareGenerator

LAM = 10.0


def _np(x):
    return np.asarray(x, "float64")


def _l1(a, b):
    return np.abs(_np(a) - _np(b)).reshape(len(a), -1).mean(1)


def _g_adv(f, form):
    f = _np(f).reshape(len(f), -1)
    return ((f - 1) ** 2).mean(1) if form == "lsgan" else np.log1p(np.exp(-f)).mean(1)


def _d_adv(r, f, form):
    r, f = _np(r).reshape(len(r), -1), _np(f).reshape(len(f), -1)
    if form == "lsgan":
        return 0.5 * ((r - 1) ** 2).mean(1).mean() + 0.5 * (f**2).mean(1).mean()
    return 0.5 * np.log1p(np.exp(-r)).mean(1).mean() + 0.5 * np.log1p(np.exp(f)).mean(1).mean()


def _ids(variables):
    return {id(v) for v in variables}


@pytest.fixture(scope="module")
def model():
    return AnatomyAwareSynthesis(**TINY, attention_level=1, seed=0)


def test_call_is_the_generator_inference_path(model, phantom_batch):
    us = phantom_batch[0][:2]
    out = np.asarray(model(us))
    assert out.shape == (2, 32, 32, 1) and np.abs(out).max() <= 1.0
    np.testing.assert_array_equal(out, model.generator(us))
    np.testing.assert_array_equal(out, model.forward(us)["synth_mr"])


def test_generator_owns_only_inference_variables(model):
    gen = model.generator
    inference = [gen.anatomy_encoder, gen.us_decoder, gen.mr_decoder, gen.cross_modal_attention,
                 gen.mr_decoder_top]
    assert _ids(gen.weights) == _ids([w for layer in inference for w in layer.weights])
    training_only = [model.us_decoder_top, model.back_encoder, model.back_decoder] + model.discriminators
    assert not _ids(gen.weights) & _ids([w for layer in training_only for w in layer.weights])
    # decoder-B in the generator stops at the attention stage; the rest reconstructs the US.
    assert gen.us_decoder.stop_stage == 2 and model.us_decoder_top.first_stage == 2
    assert model.us_decoder_top.include_head and not gen.us_decoder.include_head


@pytest.mark.parametrize("form", ["lsgan", "bce"])
def test_each_loss_term_equals_a_hand_computation(phantom_batch, form):
    us, mr, _ = (a[:3] for a in phantom_batch)
    m = AnatomyAwareSynthesis(**TINY, gan_loss=form, seed=1)
    logs = {k: float(v) for k, v in m.test_step((us, mr)).items()}
    # Recompute every term in numpy from the model's own sub-layer outputs.
    f = m.forward(us)
    e = m.edge_net
    want = {
        "loss_lat": _l1(f["recon_us"], us).mean(),  # Eq. 2
        "loss_app": _g_adv(m.appearance_discriminator(f["synth_mr"]), form).mean(),  # Eq. 3
        "loss_stru": _g_adv(m.structural_discriminator(e(f["synth_mr"])), form).mean(),  # Eq. 4
        "loss_proj": _l1(f["back_us"], us).mean(),  # Eq. 6
        "loss_app_back": _g_adv(m.back_appearance_discriminator(f["back_us"]), form).mean(),  # Eq. 7
        "loss_bi": _g_adv(m.bilatent_discriminator(f["latent_back"]), form).mean(),  # Eq. 8
        "d_app": _d_adv(m.appearance_discriminator(mr), m.appearance_discriminator(f["synth_mr"]), form),
        "d_stru": _d_adv(m.structural_discriminator(e(mr)), m.structural_discriminator(e(f["synth_mr"])), form),
        "d_app_back": _d_adv(m.back_appearance_discriminator(us), m.back_appearance_discriminator(f["back_us"]), form),
        "d_bi": _d_adv(m.bilatent_discriminator(f["latent"]), m.bilatent_discriminator(f["latent_back"]), form),
    }
    # Independent checks of the sub-layer chain: back path = D, E applied to the synth MR.
    lat_b, skips_b = m.back_encoder(f["synth_mr"])
    np.testing.assert_allclose(f["back_us"], m.back_decoder((lat_b, skips_b)), atol=1e-6)
    want["g_loss"] = (  # Eq. 9 = Eq. 1 + Eq. 5
        LAM * want["loss_lat"] + want["loss_app"] + want["loss_stru"]
        + LAM * want["loss_proj"] + want["loss_app_back"] + want["loss_bi"]
    )
    want["d_loss"] = want["d_app"] + want["d_stru"] + want["d_app_back"] + want["d_bi"]
    want["loss"] = want["g_loss"]
    assert set(logs) == set(want)
    for name, value in want.items():
        assert logs[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize(
    "flag, gone",
    [
        ("use_bilatent", ["bilatent_discriminator"]),
        ("use_structural", ["edge_net", "structural_discriminator"]),
        ("use_attention", ["cross_modal_attention"]),
    ],
)
def test_ablation_flags_remove_variables(model, flag, gone):
    ablated = AnatomyAwareSynthesis(**TINY, seed=0, **{flag: False})
    paths = [w.path for w in ablated.weights]
    full_paths = [w.path for w in model.weights]
    for name in gone:
        assert any(name in p for p in full_paths)
        assert not any(name in p for p in paths), name
        assert not hasattr(ablated, name) and not hasattr(ablated.generator, name)
    assert len(ablated.weights) < len(model.weights)
    assert ablated.count_params() < model.count_params()
    g_names, d_names = ablated._term_names()
    removed = {"use_bilatent": "bi", "use_structural": "stru"}.get(flag)
    if removed:
        assert f"loss_{removed}" not in g_names and f"d_{removed}" not in d_names
    else:  # without attention decoder-B is not needed at inference: it leaves the generator
        assert not hasattr(ablated.generator, "us_decoder")
        assert ablated.us_decoder_top.first_stage == 0


def test_compile_builds_optimizers_on_the_right_variables(model):
    model.compile()
    g_opt, d_opt = model.generator_optimizer, model.discriminator_optimizer
    assert g_opt.built and d_opt.built and g_opt is model.optimizer
    assert float(g_opt.learning_rate) == pytest.approx(2e-4) and float(g_opt.beta_1) == 0.5
    g_ids, d_ids = _ids(model.generator_variables), _ids(model.discriminator_variables)
    assert _ids(g_opt._trainable_variables) == g_ids and _ids(d_opt._trainable_variables) == d_ids
    assert not g_ids & d_ids and g_ids | d_ids == _ids(model.trainable_variables)
    assert not _ids(model.edge_net.weights) & (g_ids | d_ids)
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(jit_compile=True)


def test_test_step_paired_metrics_and_preview(model, phantom_batch):
    us, mr, mr_paired = (a[:4] for a in phantom_batch)
    model.compile()
    model.reset_metrics()
    logs = model.test_step((us, mr, mr_paired))
    synth = model(us)
    assert float(logs["mae"]) == pytest.approx(np.abs(_np(synth) - mr_paired).mean(), rel=1e-5)
    want_psnr = float(tf.reduce_mean(tf.image.psnr(synth, mr_paired, max_val=2.0)))
    want_ssim = float(tf.reduce_mean(tf.image.ssim(synth, mr_paired, max_val=2.0)))
    assert float(logs["psnr"]) == pytest.approx(want_psnr, rel=1e-5)
    assert float(logs["ssim"]) == pytest.approx(want_ssim, rel=1e-4, abs=1e-6)
    assert "psnr" not in model.test_step((us, mr))
    preview = model.preview_images(us)
    assert set(preview) == {"us", "recon_us", "synth_mr"}
    np.testing.assert_array_equal(preview["synth_mr"], synth)


def test_config_and_keras_round_trip(tmp_path, phantom_batch):
    us, mr, _ = (a[:2] for a in phantom_batch)
    m = AnatomyAwareSynthesis(**TINY, use_structural=False, attention_level=0, gan_loss="bce", seed=3)
    m.compile(generator_optimizer=keras.optimizers.Adam(1e-3))
    m.train_step((us, mr))
    config = m.get_config()
    clone = AnatomyAwareSynthesis.from_config(config)
    assert clone.get_config() == config
    assert [w.path for w in clone.weights] == [w.path for w in m.weights]
    path = tmp_path / "ours.keras"
    m.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(us), m(us))
    f_a, f_b = m.forward(us), loaded.forward(us)
    for key in ("recon_us", "back_us", "latent_back"):
        np.testing.assert_array_equal(f_a[key], f_b[key])
    assert loaded.generator_optimizer.iterations.numpy() == 1
    assert float(loaded.generator_optimizer.learning_rate) == pytest.approx(1e-3)
    # The exported part alone: the generator round-trips by itself.
    m.generator.save(tmp_path / "gen.keras")
    gen = keras.models.load_model(tmp_path / "gen.keras")
    assert isinstance(gen, AnatomyAwareGenerator)
    np.testing.assert_array_equal(gen(us), m(us))


def test_bad_arguments_and_missing_mr(model, phantom_batch):
    with pytest.raises(ValueError, match="attention_level"):
        AnatomyAwareSynthesis(**TINY, attention_level=2)
    with pytest.raises(ValueError, match="divisible"):
        AnatomyAwareSynthesis(image_size=36, depth=3)
    with pytest.raises(ValueError, match="gan_loss"):
        AnatomyAwareSynthesis(**TINY, gan_loss="wgan")
    with pytest.raises(ValueError, match="needs batches"):
        model.test_step((phantom_batch[0][:2],))


def test_fit_updates_spectral_norm(phantom_batch):
    us, mr, _ = phantom_batch
    m = AnatomyAwareSynthesis(**TINY, spectral_norm=True, seed=0)
    assert_fit_runs_power_iteration(m, us, mr)


# -- options beyond the paper (issue 11): DiffAugment and PatchNCE --------------------------


def test_nce_term_is_declared_weighted_and_serialized(phantom_batch):
    us, mr, _ = phantom_batch
    m = AnatomyAwareSynthesis(**TINY, nce_weight=2.0, nce_patches=16, seed=0)
    g, _, _ = m.compute_loss_terms(us[:4], mr[:4], training=True)
    assert list(g)[-1] == "loss_nce" and g["loss_nce"][0] == 2.0
    value = float(np.mean(g["loss_nce"][1][0]))
    assert np.isfinite(value) and value > 0.1  # cross-entropy: positive while patches are unmatched
    # the heads are generator-side variables, never a discriminator's
    head = _ids(m.nce_head.weights)
    assert head <= _ids(m.generator_variables) and not head & _ids(m.discriminator_variables)
    config = m.get_config()
    assert config["nce_weight"] == 2.0 and config["nce_patches"] == 16
    assert AnatomyAwareSynthesis.from_config(config).nce_weight == 2.0
    assert "loss_nce" not in AnatomyAwareSynthesis(**TINY, seed=0)._term_names()[0]


def test_diff_augment_changes_only_what_the_discriminators_see(phantom_batch):
    us, mr, _ = phantom_batch
    plain = AnatomyAwareSynthesis(**TINY, seed=0)
    aug = AnatomyAwareSynthesis(**TINY, seed=0, diff_augment=True)
    aug.set_weights(plain.get_weights())
    g0, d0, out0 = plain.compute_loss_terms(us[:4], mr[:4], training=True)
    g1, d1, out1 = aug.compute_loss_terms(us[:4], mr[:4], training=True)
    np.testing.assert_allclose(out0["synth_mr"], out1["synth_mr"], atol=1e-6)
    np.testing.assert_allclose(_np(g0["loss_lat"][1][0]), _np(g1["loss_lat"][1][0]), atol=1e-6)
    assert not np.allclose(_np(d0["d_app"][1][0]), _np(d1["d_app"][1][0]))
    # no augmentation outside training (test_step, evaluation)
    _, d2, _ = aug.compute_loss_terms(us[:4], mr[:4], training=False)
    _, d3, _ = plain.compute_loss_terms(us[:4], mr[:4], training=False)
    np.testing.assert_allclose(_np(d2["d_app"][1][0]), _np(d3["d_app"][1][0]), atol=1e-6)
    assert aug.get_config()["diff_augment"] is True


def test_fit_with_both_options_runs_and_logs_nce(phantom_batch):
    us, mr, _ = phantom_batch
    m = AnatomyAwareSynthesis(**TINY, seed=0, diff_augment=True, nce_weight=1.0, nce_patches=16)
    m.compile()
    hist = m.fit(tf.data.Dataset.from_tensor_slices((us, mr)).batch(4), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss_nce"][-1]) and np.isfinite(hist.history["loss"][-1])


def test_diff_augment_policy_subset_is_kept_and_checked():
    m = AnatomyAwareSynthesis(**TINY, seed=0, diff_augment="translation,cutout")
    assert m.get_config()["diff_augment"] == "translation,cutout"
    assert AnatomyAwareSynthesis.from_config(m.get_config()).diff_augment == "translation,cutout"
    with pytest.raises(ValueError, match="subset"):
        AnatomyAwareSynthesis(**TINY, seed=0, diff_augment="rotate")


@pytest.mark.parametrize("attention_level", [0, None])
def test_mr_skip_drop_withholds_the_finest_skip_from_decoder_c(phantom_batch, attention_level):
    us = tf.constant(phantom_batch[0][:2])
    kwargs = dict(attention_level=attention_level) if attention_level is not None else \
        dict(use_attention=False)

    def skip_gradient(drop):
        m = AnatomyAwareSynthesis(**TINY, mr_skip_drop=drop, seed=0, **kwargs)
        gen = m.generator
        decoder = gen.mr_decoder_top if gen.use_attention else gen.mr_decoder
        conv = decoder.blocks[-1].convs[0]  # the full-resolution stage: [up(x), skip level 0]
        up_channels = decoder.stage_filters(TINY["depth"] - 1)
        with tf.GradientTape() as tape:
            synth = m(us)
            loss = tf.reduce_mean(tf.square(synth - 0.3))
        grad = tape.gradient(loss, conv.kernel).numpy()
        return m, np.abs(grad[:, :, up_channels:]).max(), np.abs(grad[:, :, :up_channels]).max()

    m, skip, up = skip_gradient(1)
    assert skip == 0.0 and up > 0.0  # the skip's input channels see zeros: no gradient at all
    _, skip0, _ = skip_gradient(0)
    assert skip0 > 0.0  # the paper's generator: the same channels carry encoder-A's features
    # decoder-B (US reconstruction, L_lat) still gets the full-resolution skip
    out = m.forward(us)
    assert all(np.any(np.asarray(s) != 0) for s in out["skips"])
    config = m.get_config()
    assert config["mr_skip_drop"] == 1 and m.generator.get_config()["mr_skip_drop"] == 1
    assert AnatomyAwareSynthesis.from_config(config).generator.mr_skip_drop == 1
    for bad in (-1, TINY["depth"] + 1, 1.5, True):
        with pytest.raises(ValueError, match="mr_skip_drop"):
            AnatomyAwareSynthesis(**TINY, mr_skip_drop=bad, seed=0)


def _paper_and_option(phantom_batch, **option):
    """The paper's model and one with `option`, same seed (same weights), and both models'
    loss terms on three phantom pairs: `(us, mr, paper, other, g_paper, g_other, out_paper)`."""
    us, mr, _ = (a[:3] for a in phantom_batch)
    paper = AnatomyAwareSynthesis(**TINY, seed=1)
    other = AnatomyAwareSynthesis(**TINY, **option, seed=1)
    g_paper, _, out = paper.compute_loss_terms(us, mr)
    g_other, _, _ = other.compute_loss_terms(us, mr)
    return us, mr, paper, other, g_paper, g_other, out


def test_lambda_proj_weighs_l_proj_apart_from_l_lat(phantom_batch):
    us, mr, paper, split, g_paper, g_split, _ = _paper_and_option(phantom_batch, lambda_proj=2.0)
    assert g_paper["loss_proj"][0] == LAM and g_paper["loss_lat"][0] == LAM  # Eq. 1, 5: one lambda
    assert g_split["loss_proj"][0] == 2.0 and g_split["loss_lat"][0] == LAM
    logs_paper = {k: float(v) for k, v in paper.test_step((us, mr)).items()}
    logs_split = {k: float(v) for k, v in split.test_step((us, mr)).items()}
    assert logs_split["loss_proj"] == pytest.approx(logs_paper["loss_proj"], rel=1e-5)
    # g_loss drops by exactly (10 - 2) * L_proj: the weight reaches the objective
    want = logs_paper["g_loss"] - (LAM - 2.0) * logs_paper["loss_proj"]
    assert logs_split["g_loss"] == pytest.approx(want, rel=1e-4)
    assert paper.get_config()["lambda_proj"] is None
    config = split.get_config()
    assert config["lambda_proj"] == 2.0
    assert AnatomyAwareSynthesis.from_config(config).lambda_proj == 2.0
    assert AnatomyAwareSynthesis(**TINY, lambda_proj=0, seed=0).lambda_proj == 0.0
    for bad in (-1.0, float("nan"), float("inf"), True, "ten"):
        with pytest.raises(ValueError, match="lambda_proj"):
            AnatomyAwareSynthesis(**TINY, lambda_proj=bad, seed=0)


def test_proj_pool_holds_the_us_layout_not_its_pixels(phantom_batch):
    us, _, paper, coarse, g_paper, g_coarse, out = _paper_and_option(phantom_batch, proj_pool=4)
    back = np.asarray(out["back_us"])
    n, h, w, c = back.shape

    def cells(x):
        return np.asarray(x).reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))

    want_pixel = np.abs(back - np.asarray(us)).mean(axis=(1, 2, 3))
    want_cells = np.abs(cells(back) - cells(us)).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(g_paper["loss_proj"][1][0]), want_pixel, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(g_coarse["loss_proj"][1][0]), want_cells, rtol=1e-5)
    assert want_cells.mean() < want_pixel.mean()  # detail inside a cell no longer counts
    assert paper.get_config()["proj_pool"] == 1
    assert AnatomyAwareSynthesis.from_config(coarse.get_config()).proj_pool == 4
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="proj_pool"):
            AnatomyAwareSynthesis(**TINY, proj_pool=bad, seed=0)


def test_lambda_outline_adds_the_head_outline_term_only_when_set(phantom_batch):
    from usmr_tf.layers.head_outline import outline_loss_per_example

    us, mr, paper, held, g_paper, g_held, out = _paper_and_option(phantom_batch,
                                                                  lambda_outline=3.0)
    assert "loss_outline" not in g_paper and "loss_outline" not in paper._term_names()[0]
    weight, (per_example,) = g_held["loss_outline"]
    assert weight == 3.0 and "loss_outline" in held._term_names()[0]
    want = np.asarray(outline_loss_per_example(out["synth_mr"], us))  # same weights, same MR
    np.testing.assert_allclose(np.asarray(per_example), want, rtol=1e-5)
    assert np.all(want > 0)  # an untrained generator does not draw the US's head
    logs_paper = {k: float(v) for k, v in paper.test_step((us, mr)).items()}
    logs_held = {k: float(v) for k, v in held.test_step((us, mr)).items()}
    assert logs_held["g_loss"] == pytest.approx(
        logs_paper["g_loss"] + 3.0 * logs_held["loss_outline"], rel=1e-4)
    assert paper.get_config()["lambda_outline"] == 0.0
    assert AnatomyAwareSynthesis.from_config(held.get_config()).lambda_outline == 3.0
    for bad in (-1.0, float("nan"), True, "ten", None):
        with pytest.raises(ValueError, match="lambda_outline"):
            AnatomyAwareSynthesis(**TINY, lambda_outline=bad, seed=0)


def test_disc_scales_gives_every_image_discriminator_a_coarse_copy(phantom_batch):
    us, mr, paper, multi, g_paper, g_multi, out = _paper_and_option(phantom_batch, disc_scales=2)
    images = [multi.appearance_discriminator, multi.structural_discriminator,
              multi.back_appearance_discriminator]
    assert all(isinstance(d, MultiScaleDiscriminator) and d.scales == 2 for d in images)
    assert isinstance(multi.bilatent_discriminator, LatentDiscriminator)  # latents: one scale
    # only the discriminators change: same generator weights, same images, same L1 terms
    np.testing.assert_array_equal(paper.generator.get_weights()[0], multi.generator.get_weights()[0])
    np.testing.assert_allclose(g_multi["loss_lat"][1][0], g_paper["loss_lat"][1][0], rtol=1e-6)
    # L_app (Eq. 3) is the LSGAN term over both scales' logits, each scale weighed equally
    synth = np.asarray(out["synth_mr"])
    d = multi.appearance_discriminator
    fine, coarse = (np.asarray(d.discs[0](synth)),
                    np.asarray(d.discs[1](synth.reshape(3, 16, 2, 16, 2, 1).mean(axis=(2, 4)))))
    want = 0.5 * (((fine - 1) ** 2).mean(axis=(1, 2, 3)) + ((coarse - 1) ** 2).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(g_multi["loss_app"][1][0], want, rtol=1e-5)
    ids = _ids(d.discs[1].weights)
    assert ids <= _ids(multi.discriminator_variables) and not ids & _ids(multi.generator_variables)
    assert paper.get_config()["disc_scales"] == 1
    assert AnatomyAwareSynthesis.from_config(multi.get_config()).disc_scales == 2
    multi.compile()
    logs = multi.train_step((us, mr))
    assert np.isfinite(float(logs["d_loss"]))
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="disc_scales"):
            AnatomyAwareSynthesis(**TINY, disc_scales=bad, seed=0)
    AnatomyAwareSynthesis(**TINY, disc_scales=3, seed=0)  # 32 px: the coarsest grid is 1 x 1
    with pytest.raises(ValueError, match="divisible by 64"):
        AnatomyAwareSynthesis(**TINY, disc_scales=4, seed=0)
