"""`AnatomyAwareSynthesis`: the full framework of Fig. 2 with the objective of Eq. 1-9.

Blocks: encoder-A (`generator.anatomy_encoder`) -> decoder-B (US reconstruction) and decoder-C
(synth MR) with `CrossModalAttention` between them (`generator`, the inference path); reverse
path encoder-D (`back_encoder`) -> decoder-E (`back_decoder`, back-inferred US); D_app
(`appearance_discriminator`), D_stru on EdgeNet maps (`structural_discriminator`, `edge_net`),
D_app^back (`back_appearance_discriminator`) and D_bi on encoder outputs
(`bilatent_discriminator`).

Options beyond the paper (off by default, so the paper's configuration stays reproducible;
docs/models.md, "Against mode collapse"): `diff_augment=True` augments every image
discriminator's inputs (`usmr_tf/layers/diff_augment.py`); `nce_weight > 0` adds `loss_nce`,
a per-patch contrastive form of the bi-directional latent consistency between encoder-A
features of the US and encoder-D features of the synthesized MR (`usmr_tf/layers/patch_nce.py`);
`mr_skip_drop=n > 0` withholds encoder-A's n finest skip connections from decoder-C
(`AnatomyAwareGenerator`); `lambda_proj` weighs L_proj (Eq. 6) apart from L_lat (Eq. 2), which
the paper weighs with one lambda (None, the default: `lambda_rec` for both); `proj_pool=k > 1`
compares back-inferred and input US after k x k average pooling in L_proj, so that only their
coarse layout is held (1, the default: the paper's per-pixel L1); `lambda_outline > 0` adds
`loss_outline`, which holds the synthesized head to its aligned US's intracranial region
(`usmr_tf/layers/head_outline.py`; 0, the default: no such term).

Ablations of Table 1 (the sub-layers are not created when off):
`use_bilatent=False` -> no D_bi / L_bi ("w/o bi-lat"); `use_structural=False` -> no EdgeNet,
D_stru / L_stru ("w/o struct."); `use_attention=False` -> no attention, decoder-B leaves the
inference generator ("w/o att.").
"""

import keras

from usmr_tf.errors import whole_number
from usmr_tf.layers.discriminators import LatentDiscriminator
from usmr_tf.layers.edge_net import EdgeNet
from usmr_tf.layers.head_outline import outline_loss_per_example
from usmr_tf.layers.patch_nce import PatchNCEHead, patch_nce_per_example
from usmr_tf.layers.seeding import sub_seed
from usmr_tf.layers.unet_blocks import Decoder, Encoder
from usmr_tf.models.base import SynthesisModel
from usmr_tf.models.gan_losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    l1_per_example,
)
from usmr_tf.models.generators import AnatomyAwareGenerator


def _check_weight(value, name, allow_none=False):
    """A finite number >= 0 (or None where `allow_none`), else ValueError naming `name`."""
    if value is None and allow_none:
        return None
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = float("nan")
    if isinstance(value, bool) or not 0.0 <= weight < float("inf"):
        what = "None or a number >= 0" if allow_none else "a number >= 0"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return weight


def pooled(image, pool):
    """`image [B, H, W, C]` averaged over `pool x pool` cells (itself when `pool == 1`)."""
    if pool == 1:
        return image
    return keras.ops.average_pool(image, pool, strides=pool, padding="same")


@keras.saving.register_keras_serializable(package="usmr_tf")
class AnatomyAwareSynthesis(SynthesisModel):
    """US -> MR synthesis from unpaired data (Jiao et al. 2019). `model(us)` -> synth MR."""

    reconstruction_term = "loss_lat"

    def __init__(
        self,
        image_size=128,
        base_filters=32,
        depth=4,
        attention_level=1,
        lambda_rec=10.0,
        use_bilatent=True,
        use_structural=True,
        use_attention=True,
        gan_loss="lsgan",
        disc_filters=None,
        spectral_norm=False,
        diff_augment=False,
        nce_weight=0.0,
        nce_patches=256,
        nce_temperature=0.07,
        mr_skip_drop=0,
        lambda_proj=None,
        proj_pool=1,
        lambda_outline=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            image_size=image_size,
            base_filters=base_filters,
            depth=depth,
            lambda_rec=lambda_rec,
            gan_loss=gan_loss,
            disc_filters=disc_filters,
            spectral_norm=spectral_norm,
            diff_augment=diff_augment,
            seed=seed,
            **kwargs,
        )
        self.nce_weight = float(nce_weight)
        if self.nce_weight < 0:
            raise ValueError(f"nce_weight must be >= 0, got {nce_weight}")
        self.nce_patches = int(nce_patches)
        self.nce_temperature = float(nce_temperature)
        # Beyond the paper (issue 18): the weight of L_proj (Eq. 5-6) apart from L_lat's
        # (Eq. 1-2); None keeps the paper's single lambda = lambda_rec for both.
        self.lambda_proj = _check_weight(lambda_proj, "lambda_proj", allow_none=True)
        # Beyond the paper (issue 18): L_proj on k x k cell means, the US's layout, not its pixels.
        self.proj_pool = whole_number(proj_pool, "proj_pool")
        # Beyond the paper (issue 18): the synthesized head held to its US's intracranial region.
        self.lambda_outline = _check_weight(lambda_outline, "lambda_outline")
        self.use_bilatent = bool(use_bilatent)
        self.use_structural = bool(use_structural)
        self.use_attention = bool(use_attention)
        f, d = self.base_filters, self.depth
        self.generator = AnatomyAwareGenerator(
            image_size=self.image_size,
            base_filters=f,
            depth=d,
            attention_level=attention_level,
            use_attention=self.use_attention,
            mr_skip_drop=mr_skip_drop,
            seed=sub_seed(seed, "generator"),
            name="generator",
        )
        self.mr_skip_drop = self.generator.mr_skip_drop
        self.attention_level = self.generator.attention_level
        # Decoder-B after the attention stage (or all of it): training only (US reconstruction).
        first = self.attention_level + 1 if self.use_attention else 0
        self.us_decoder_top = Decoder(
            f, d, first_stage=first, seed=sub_seed(seed, "B_top"), name="us_decoder_top"
        )
        self.back_encoder = Encoder(f, d, seed=sub_seed(seed, "D"), name="back_encoder")
        self.back_decoder = Decoder(f, d, seed=sub_seed(seed, "E"), name="back_decoder")
        self.appearance_discriminator = self._patch_discriminator("appearance_discriminator")
        if self.use_structural:
            self.edge_net = EdgeNet(name="edge_net")
            self.structural_discriminator = self._patch_discriminator("structural_discriminator")
        self.back_appearance_discriminator = self._patch_discriminator(
            "back_appearance_discriminator"
        )
        if self.use_bilatent:
            self.bilatent_discriminator = self._patch_discriminator(
                "bilatent_discriminator", cls=LatentDiscriminator
            )
        if self.nce_weight > 0:
            # One MLP per encoder level (skips 0..depth-1 and the latent), shared by queries
            # (encoder-D on synth MR) and keys (encoder-A on US), as in Park et al. 2020.
            self.nce_head = PatchNCEHead(
                units=max(64, 4 * f), num_levels=d + 1, seed=sub_seed(seed, "nce"), name="nce_head"
            )
        self._finish_init()

    def _build_components(self, input_shape):
        enc_shapes = self.generator.anatomy_encoder.compute_output_shape(input_shape)
        if self.use_attention:
            f_shape = self.generator.us_decoder.compute_output_shape(enc_shapes)
            self.us_decoder_top.build((f_shape, enc_shapes[1]))
        else:
            self.us_decoder_top.build(enc_shapes)
        self.back_encoder.build(input_shape)
        self.back_decoder.build(self.back_encoder.compute_output_shape(input_shape))
        self.appearance_discriminator.build(input_shape)
        if self.use_structural:
            self.edge_net.build(input_shape)
            self.structural_discriminator.build(self.edge_net.compute_output_shape(input_shape))
        self.back_appearance_discriminator.build(input_shape)
        if self.use_bilatent:
            self.bilatent_discriminator.build(enc_shapes[0])
        if self.nce_weight > 0:
            levels = list(enc_shapes[1]) + [enc_shapes[0]]
            self.nce_head.build([(None, None, s[-1]) for s in levels])

    @property
    def discriminators(self):
        ds = [self.appearance_discriminator]
        if self.use_structural:
            ds.append(self.structural_discriminator)
        ds.append(self.back_appearance_discriminator)
        if self.use_bilatent:
            ds.append(self.bilatent_discriminator)
        return ds

    def _term_names(self):
        g = ["loss_lat", "loss_app"] + (["loss_stru"] if self.use_structural else [])
        g += ["loss_proj", "loss_app_back"] + (["loss_bi"] if self.use_bilatent else [])
        g += ["loss_nce"] if self.nce_weight > 0 else []
        g += ["loss_outline"] if self.lambda_outline > 0 else []
        d = ["d_app"] + (["d_stru"] if self.use_structural else []) + ["d_app_back"]
        d += ["d_bi"] if self.use_bilatent else []
        return g, d

    def forward(self, us, training=None):
        """One pass of every generator block: latent y, recon_us, synth_mr, latent_back, back_us."""
        out = self.generator.forward(us, training=training)  # A, (B), C, attention
        top_in = out["us_features"] if self.use_attention else out["latent"]
        out["recon_us"] = self.us_decoder_top((top_in, out["skips"]), training=training)  # x^_U
        latent_back, skips_back = self.back_encoder(out["synth_mr"], training=training)  # y^back
        out["latent_back"] = latent_back
        out["skips_back"] = skips_back
        out["back_us"] = self.back_decoder((latent_back, skips_back), training=training)  # x~_U
        return out

    def compute_loss_terms(self, us, mr, training=False):
        self._require_mr(mr)
        lam, form = self.lambda_rec, self.gan_loss
        lam_proj = lam if self.lambda_proj is None else self.lambda_proj
        out = self.forward(us, training=training)
        synth = out["synth_mr"]
        g, d = {}, {}
        # Forward objective L_f = lambda L_lat + L_app + L_stru (Eq. 1).
        g["loss_lat"] = (lam, [l1_per_example(out["recon_us"], us)])  # Eq. 2
        # Discriminator inputs pass through DiffAugment when `diff_augment` (else unchanged).
        mr_in, synth_in = self._d_input(mr, 0, training), self._d_input(synth, 1, training)
        real = self.appearance_discriminator(mr_in, training=training)
        fake = self.appearance_discriminator(synth_in, training=training)
        g["loss_app"] = (1.0, [generator_adversarial_loss(fake, form)])  # Eq. 3
        if self.use_structural:
            real_e = self.structural_discriminator(self.edge_net(mr_in), training=training)
            fake_e = self.structural_discriminator(self.edge_net(synth_in), training=training)
            g["loss_stru"] = (1.0, [generator_adversarial_loss(fake_e, form)])  # Eq. 4
        # Reverse objective L_r = lambda L_proj + L_app^back + L_bi (Eq. 5).
        # Eq. 6 (proj_pool k > 1, beyond the paper: the L1 of k x k cell means)
        back_us, k = out["back_us"], self.proj_pool
        g["loss_proj"] = (lam_proj, [l1_per_example(pooled(back_us, k), pooled(us, k))])  # Eq. 6
        real_b = self.back_appearance_discriminator(self._d_input(us, 2, training), training=training)
        fake_b = self.back_appearance_discriminator(
            self._d_input(out["back_us"], 3, training), training=training
        )
        g["loss_app_back"] = (1.0, [generator_adversarial_loss(fake_b, form)])  # Eq. 7
        if self.use_bilatent:
            # y is "real", y^back is "fake".
            real_l = self.bilatent_discriminator(out["latent"], training=training)
            fake_l = self.bilatent_discriminator(out["latent_back"], training=training)
            g["loss_bi"] = (1.0, [generator_adversarial_loss(fake_l, form)])  # Eq. 8
        if self.nce_weight > 0:
            # Beyond the paper: PatchNCE between encoder-D(synth MR) and encoder-A(US) features.
            g["loss_nce"] = (self.nce_weight, [patch_nce_per_example(
                list(out["skips_back"]) + [out["latent_back"]],
                list(out["skips"]) + [out["latent"]],
                self.nce_head, self.nce_head, self.nce_patches, self._step_seed(4),
                self.nce_temperature,
            )])
        if self.lambda_outline > 0:
            # Beyond the paper: MR outside the US's intracranial region + background inside it.
            g["loss_outline"] = (self.lambda_outline, [outline_loss_per_example(synth, us)])
        # Total L = L_f + L_r (Eq. 9) is the weighted sum of g, formed in the base class.
        # Discriminator sides of the same adversarial terms:
        d["d_app"] = (1.0, list(discriminator_adversarial_loss(real, fake, form)))  # Eq. 3
        if self.use_structural:
            d["d_stru"] = (1.0, list(discriminator_adversarial_loss(real_e, fake_e, form)))  # Eq. 4
        d["d_app_back"] = (1.0, list(discriminator_adversarial_loss(real_b, fake_b, form)))  # Eq. 7
        if self.use_bilatent:
            d["d_bi"] = (1.0, list(discriminator_adversarial_loss(real_l, fake_l, form)))  # Eq. 8
        return g, d, out

    def preview_images(self, us):
        out = self.forward(us, training=False)
        return {"us": us, "recon_us": out["recon_us"], "synth_mr": out["synth_mr"]}

    def get_config(self):
        config = super().get_config()
        config.update(
            attention_level=self.attention_level,
            use_bilatent=self.use_bilatent,
            use_structural=self.use_structural,
            use_attention=self.use_attention,
            nce_weight=self.nce_weight,
            nce_patches=self.nce_patches,
            nce_temperature=self.nce_temperature,
            mr_skip_drop=self.mr_skip_drop,
            lambda_proj=self.lambda_proj,
            proj_pool=self.proj_pool,
            lambda_outline=self.lambda_outline,
        )
        return config
