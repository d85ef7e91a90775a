"""The reference network shapes: the FOMO grid each head puts out, and the combinations it refuses."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from firmware_models.nets import FomoNet, fuse_batchnorm  # noqa: E402


@pytest.mark.parametrize(
    ("stride", "head", "grid"), [(8, "shuffle", (12, 20)), (4, "shuffle", (24, 40)), (4, "skip", (24, 40))]
)
def test_fomo_heads_put_out_one_probability_per_class_and_cell(stride: int, head: str, grid: tuple) -> None:
    net = FomoNet(5, stride=stride, head=head).eval()
    with torch.no_grad():
        probs = net(torch.rand(2, 3, 96, 160))
    assert tuple(probs.shape) == (2, 5, *grid)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2, *grid), atol=1e-5)


def test_skip_head_sees_the_quarter_resolution_features() -> None:
    """A change in one 1/4 feature cell changes the output there through the lateral path, even with
    the 1/8 path cut: the head is not just the 1/8 context spread over 2x2 cells."""
    net = FomoNet(5, stride=4, head="skip", softmax=False).eval()
    with torch.no_grad():
        for p in net.eighth[-2].parameters():
            p.zero_()  # cut the 1/8 context
        x = torch.rand(1, 3, 96, 160)
        y = x.clone()
        y[..., 40:44, 80:84] += 0.5  # one 4x4 input patch = one output cell
        diff = (net(y) - net(x)).abs().sum(dim=1)[0]
    assert diff[10, 20] > 0 and diff.sum() > 0


def test_fused_skip_head_computes_the_same() -> None:
    net = FomoNet(5, stride=4, head="skip").eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        x = torch.rand(1, 3, 96, 160)
        before = net(x)
        after = fuse_batchnorm(net)(x)
    assert torch.allclose(before, after, atol=1e-5)


@pytest.mark.parametrize(("stride", "head"), [(8, "skip"), (4, "upsample"), (2, "shuffle")])
def test_fomo_refuses_an_unknown_head_or_stride(stride: int, head: str) -> None:
    with pytest.raises(ValueError, match="FomoNet"):
        FomoNet(5, stride=stride, head=head)
