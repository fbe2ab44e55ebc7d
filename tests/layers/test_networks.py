"""DCGAN depth follows the image size: stage counts, widths, shapes, sizes refused."""

from __future__ import annotations

import numpy as np
import pytest

from aigc_tf import registry
from aigc_tf.layers import networks
from aigc_tf.models.gan import GAN


def _shapes(model, prefix):
    return [tuple(layer.output.shape[1:]) for layer in model.layers if layer.name.startswith(prefix)]


def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("size", networks.PYRAMID_SIZES)
def test_pyramid_grows_from_4x4_one_stage_per_doubling(size):
    b, k = 2, int(np.log2(size // 4))
    assert networks.dcgan_layout((size, size, 3)) == ("pyramid", k)
    g = networks.build_generator("dcgan", (size, size, 3), 8, base_filters=b, layout="auto")
    # 4x4 x b*2^(k-1), then k - 1 halving stages, then the up-sampling to RGB.
    assert _shapes(g, "g_reshape") == [(4, 4, b * 2 ** (k - 1))]
    assert _shapes(g, "g_up") == [(4 * 2**i, 4 * 2**i, b * 2 ** (k - 1 - i)) for i in range(1, k)]
    assert g.output_shape == (None, size, size, 3)
    d = networks.build_discriminator("dcgan", (size, size, 3), base_filters=b, layout="auto")
    assert _shapes(d, "d_conv") == [(size // 2 ** (i + 1), size // 2 ** (i + 1), b * 2**i) for i in range(k)]
    assert _shapes(d, "d_final_conv") == [(1, 1, 1)]
    assert d.output_shape == (None, 1)


def test_64_and_32_pixels_have_the_documents_widths_and_pytorch_dcgan_weights():
    g64 = networks.build_generator("dcgan", (64, 64, 3), 100, base_filters=64, layout="auto")
    assert [s[-1] for s in _shapes(g64, "g_reshape") + _shapes(g64, "g_up")] == [512, 256, 128, 64]
    # The PyTorch DCGAN tutorial's netG has 3,576,704 parameters (no biases,
    # BatchNorm affine); ours adds the output layer's 3 biases.
    assert _trainable(g64) == 3_576_704 + 3
    d64 = networks.build_discriminator("dcgan", (64, 64, 3), base_filters=64, layout="auto")
    # netD: 2,765,568; ours keeps biases on the first conv (64) and the final one (1).
    assert _trainable(d64) == 2_765_568 + 64 + 1
    g32 = networks.build_generator("dcgan", (32, 32, 3), 100, base_filters=64, layout="auto")
    assert [s[-1] for s in _shapes(g32, "g_reshape") + _shapes(g32, "g_up")] == [256, 128, 64]
    assert g32.output_shape == (None, 32, 32, 3)


def test_28_pixels_keep_the_fixed_two_stage_networks():
    assert networks.dcgan_layout((28, 28, 1)) == ("fixed", 2)
    g = networks.build_generator("dcgan", (28, 28, 1), 16, base_filters=8, layout="auto")
    assert _shapes(g, "g_reshape") == [(7, 7, 32)]
    assert _shapes(g, "g_up") == [(14, 14, 16), (28, 28, 8)]
    fixed = networks.build_generator("dcgan", (28, 28, 1), 16, base_filters=8, layout="fixed")
    assert [w.shape for w in g.weights] == [w.shape for w in fixed.weights]
    d = networks.build_discriminator("dcgan", (28, 28, 1), base_filters=8, layout="auto")
    assert "d_final_conv" not in [layer.name for layer in d.layers]


def test_a_gan_built_without_a_layout_is_release_0_1_0s_so_old_files_load():
    # .keras files of 0.1.0 store no layout: the constructor default must rebuild their networks.
    old = GAN(image_shape=(32, 32, 3), latent_dim=8, base_filters=4, seed=0)
    assert old.layout == "fixed" and _shapes(old.generator, "g_reshape") == [(8, 8, 16)]
    new = registry.build_model({"name": "dcgan", "latent_dim": 8, "base_filters": 4}, 0, image_shape=(32, 32, 3),
                               num_classes=0)
    assert new.layout == "pyramid" and new.get_config()["layout"] == "pyramid"  # stored resolved
    assert _shapes(new.generator, "g_reshape") == [(4, 4, 16)]
    cgan = registry.build_model({"name": "cgan", "latent_dim": 8, "base_filters": 4}, 0, image_shape=(64, 64, 3),
                                num_classes=3)
    assert cgan.generate(2, seed=0).shape == (2, 64, 64, 3)
    assert cgan.discriminator.output_shape == (None, 1)


@pytest.mark.parametrize("shape, layout", [((20, 20, 1), "auto"), ((48, 48, 3), "auto"), ((32, 64, 3), "pyramid"),
                                           ((28, 28, 1), "pyramid")])
def test_unsupported_sizes_name_the_supported_ones(shape, layout):
    with pytest.raises(ValueError, match=r"28 pixels .* 8, 16, 32, 64, 128, 256 .*set data.image_size"):
        networks.dcgan_layout(shape, layout)


def test_unknown_layout():
    with pytest.raises(ValueError, match="unknown DCGAN layout 'deep'; use one of auto, fixed, pyramid"):
        GAN(image_shape=(32, 32, 3), layout="deep")
