"""SegNet matches the recipe's table: names, shapes, parameter count, BN, init, any input size."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.segnet import SegNet, count_parameters

# The reference's table, transcribed: (block, input channels, output channels).
RECIPE_BLOCKS = [
    ("conv1", 3, 64),
    ("conv2", 64, 64),
    ("conv3", 64, 128),
    ("conv4", 128, 128),
    ("conv5", 128, 256),
    ("conv6", 256, 256),
    ("conv7", 256, 256),
    ("conv8", 256, 512),
    ("conv9", 512, 512),
    ("conv10", 512, 512),
    ("conv11", 512, 512),
    ("conv12", 512, 512),
    ("conv13", 512, 512),
    ("conv14", 512, 512),
    ("conv15", 512, 512),
    ("conv16", 512, 512),
    ("conv17", 512, 512),
    ("conv18", 512, 512),
    ("conv19", 512, 256),
    ("conv20", 256, 256),
    ("conv21", 256, 256),
    ("conv22", 256, 128),
    ("conv23", 128, 128),
    ("conv24", 128, 64),
    ("conv25", 64, 64),
]


def recipe_state_dict(num_classes: int = 20) -> dict[str, torch.Tensor]:
    """A state_dict shaped like the recipe's ``torch.save(net.state_dict())``."""
    state: dict[str, torch.Tensor] = {}
    for name, cin, cout in RECIPE_BLOCKS:
        state[f"{name}.conv.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        state[f"{name}.conv.bias"] = torch.randn(cout) * 0.01
        state[f"{name}.bn.weight"] = torch.rand(cout) + 0.5
        state[f"{name}.bn.bias"] = torch.randn(cout) * 0.1
        state[f"{name}.bn.running_mean"] = torch.randn(cout) * 0.1
        state[f"{name}.bn.running_var"] = torch.rand(cout) + 0.5
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(1234)
    state["outconv1.conv.weight"] = torch.randn(num_classes, 64, 3, 3) * 0.01
    state["outconv1.conv.bias"] = torch.randn(num_classes) * 0.01
    return state


def test_parameter_count_is_the_recipes():
    from_table = sum(cout * cin * 9 + cout + 2 * cout for _, cin, cout in RECIPE_BLOCKS)
    from_table += 20 * 64 * 9 + 20
    assert from_table == 29_454_548
    assert count_parameters(SegNet(num_classes=20, width=1.0)) == 29_454_548


def test_recipe_state_dict_loads_strict_and_is_used():
    state = recipe_state_dict()
    model = SegNet()
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key


def test_width_and_class_count_scale_the_layers():
    model = SegNet(num_classes=11, width=0.25)
    assert model.conv1.conv.out_channels == 16
    assert model.conv13.conv.out_channels == 128
    assert model.conv25.conv.out_channels == 16
    assert model.outconv1.conv.out_channels == 11
    full = count_parameters(SegNet(num_classes=11))
    assert count_parameters(model) < full / 10


def test_batchnorm_momentum_and_recipe_initialisation():
    torch.manual_seed(0)
    model = SegNet()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(norms) == 25 and len(convs) == 26
    assert all(m.momentum == 0.9 for m in norms)
    assert all(torch.count_nonzero(m.bias) == 0 for m in convs)
    weight = model.conv9.conv.weight.detach()
    expected_std = math.sqrt(2 / (512 * 9))
    assert float(weight.mean()) == pytest.approx(0, abs=expected_std * 0.01)
    assert float(weight.std()) == pytest.approx(expected_std, rel=0.02)
    assert float(model.outconv1.conv.weight.detach().std()) == pytest.approx(
        math.sqrt(2 / (64 * 9)), rel=0.05
    )


@pytest.mark.parametrize("size", [(32, 64), (96, 96), (97, 45), (50, 33)])
def test_output_has_the_input_size_even_when_not_divisible_by_32(size):
    model = SegNet(width=0.0625).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 20, *size)


def test_unpooling_puts_values_back_where_the_maximum_was():
    """With identity-like blocks, the decoder sees each pooled maximum at its source position."""
    model = SegNet(width=0.0625).eval()
    indices_seen = []
    original_unpool = model.up5.forward

    def spy(x, indices, output_size=None):
        out = original_unpool(x, indices, output_size=output_size)
        indices_seen.append((x, indices, out))
        return out

    model.up5.forward = spy
    with torch.no_grad():
        model(torch.randn(1, 3, 33, 65))
    x, indices, out = indices_seen[0]
    assert out.shape[-2:] == (33, 65)
    flat = out.flatten(2)
    assert torch.equal(flat.gather(2, indices.flatten(2)), x.flatten(2))
    assert int((out != 0).sum()) <= x.numel()


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 32x32"):
        SegNet(width=0.0625)(torch.randn(1, 3, 16, 64))


def test_invalid_width_is_refused():
    with pytest.raises(ValueError, match="width"):
        SegNet(width=0)
