"""The speed-run CNN's options: residual pairs, the average head, the last pool left out."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnbench.models.speed import Residual, SpeedCNN


def feature_map(net: SpeedCNN, x: torch.Tensor) -> torch.Tensor:
    """The map the global pool reads: the features before the global pool and the flatten."""
    return net.features[:-2](x)


def test_a_residual_pair_whose_branch_is_silenced_passes_its_input_through():
    pair = Residual(8).eval()
    last_bn = [m for m in pair.body if isinstance(m, nn.BatchNorm2d)][-1]
    nn.init.zeros_(last_bn.weight)
    nn.init.zeros_(last_bn.bias)
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(pair(x), x)
    nn.init.ones_(last_bn.weight)
    assert not torch.equal(pair(x), x)


def test_a_residual_net_has_one_widening_conv_and_a_pair_per_shortcut_in_each_block():
    net = SpeedCNN(1, 28, 10, widths=(8, 16, 32), convs=5, residual=True)
    assert sum(isinstance(m, Residual) for m in net.modules()) == 3 * 2
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 3 * 5
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_residual_blocks_with_an_even_number_of_convs_are_refused():
    with pytest.raises(ValueError, match="model.convs must be odd"):
        SpeedCNN(1, 28, 10, widths=(8, 16), convs=2, residual=True)


def test_the_average_head_reads_the_mean_of_the_last_map():
    torch.manual_seed(0)
    net = SpeedCNN(1, 28, 10, widths=(4, 8), convs=1, head="avg").eval()
    x = torch.randn(2, 1, 28, 28)
    expected = net.classifier(feature_map(net, x).mean((2, 3)))
    assert torch.allclose(net(x), expected, atol=1e-6)


def test_without_the_last_pool_the_global_pool_sees_the_last_row_and_column():
    x = torch.randn(1, 1, 28, 28)
    pooled = SpeedCNN(1, 28, 10, widths=(4, 8, 16), convs=1).eval()
    whole = SpeedCNN(1, 28, 10, widths=(4, 8, 16), convs=1, last_pool=False).eval()
    assert feature_map(pooled, x).shape[-2:] == (3, 3)  # 7x7 pooled 2x2: row and column 7 lost
    assert feature_map(whole, x).shape[-2:] == (7, 7)
    whole.load_state_dict(pooled.state_dict())  # the same weights: only the pool differs
    assert whole(x).shape == (1, 10)


def test_an_unknown_head_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="max, avg or flatten"):
        SpeedCNN(1, 28, 10, head="mean")
