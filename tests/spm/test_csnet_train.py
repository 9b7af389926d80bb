"""CSNet shapes, the SPM loss terms, and seeded determinism of the per-image optimisation."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from SPM.model import CSNet
from SPM.train import CSNetTrainer, FusedSPMLoss, SPMTrainConfig, argmax_ce, continuity_loss, spm_loss


def test_csnet_shapes_and_layers():
    net = CSNet(3, 16, n_conv=3)
    out = net(torch.rand(2, 3, 11, 13))
    assert out.shape == (2, 16, 11, 13)
    assert len(net.conv2) == 2 and net.conv3.kernel_size == (1, 1)
    # conv3x3 3->16 + 2 x conv3x3 16->16 + conv1x1 16->16, 4 BNs
    expected = (3 * 9 * 16 + 16) + 2 * (16 * 9 * 16 + 16) + (16 * 16 + 16) + 4 * 2 * 16
    assert sum(p.numel() for p in net.parameters()) == expected


def test_csnet_relu_before_bn():
    net = CSNet(1, 2, n_conv=1).eval()
    with torch.no_grad():
        for m in (net.conv1, net.conv3):
            m.weight.zero_()
            m.bias.zero_()
        net.conv1.bias.copy_(torch.tensor([-1.0, 2.0]))
        net.bn1.running_mean.zero_()
        net.bn1.running_var.fill_(1 - 1e-5)  # so BN is the identity in eval mode
        net.conv3.weight[:, :, 0, 0] = torch.eye(2)
        net.bn3.running_mean.zero_()
        net.bn3.running_var.fill_(1 - 1e-5)
    out = net(torch.zeros(1, 1, 2, 2))
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.0, 2.0]))  # ReLU clipped the -1


def test_continuity_loss_by_hand():
    y = torch.zeros(1, 1, 2, 3)
    y[0, 0] = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])
    # vertical |diffs|: 2, 1, 1 -> mean 4/3; horizontal: 1, 2, 0, 0 -> mean 3/4
    assert torch.isclose(continuity_loss(y), torch.tensor(4 / 3 + 3 / 4))


def test_argmax_ce_and_total_loss():
    # 2 classes on a 2x2 image; per pixel, CE against its own argmax = -max log-softmax
    y = torch.tensor([[[2.0, 0.0], [0.5, -1.0]], [[0.0, 1.0], [0.0, 3.0]]]).unsqueeze(0)
    per_pixel = [-torch.log_softmax(y[0, :, i, j], 0).max() for i in range(2) for j in range(2)]
    expected_ce = torch.stack(per_pixel).mean()
    assert torch.isclose(argmax_ce(y), expected_ce)
    cfg = SPMTrainConfig(stepsize_ce=1.0, stepsize_ss=5.0)
    assert torch.isclose(spm_loss(y, cfg), expected_ce + 5 * continuity_loss(y))
    # gradient of CE w.r.t. logits is softmax - onehot(argmax), as with a fixed integer target
    y.requires_grad_(True)
    argmax_ce(y).backward()
    ref = y.detach().clone().requires_grad_(True)
    F.cross_entropy(ref, torch.tensor([[[0, 1], [0, 1]]])).backward()
    assert torch.allclose(y.grad, ref.grad)


def test_fused_loss_value_and_gradient_equal_autograd():
    g = torch.Generator().manual_seed(0)
    # integer-valued logits: argmax ties and zero neighbour differences both occur
    y = torch.randint(-2, 3, (2, 5, 7, 6), generator=g).double()
    assert (y.diff(dim=2) == 0).any() and (y.diff(dim=3) == 0).any()
    assert ((y == y.amax(1, keepdim=True)).sum(1) > 1).any()
    cfg = SPMTrainConfig(stepsize_ce=1.5, stepsize_ss=5.0)
    ref = y.clone().requires_grad_(True)
    spm_loss(ref, cfg).backward()
    fused_in = y.clone().requires_grad_(True)
    fused = FusedSPMLoss.apply(fused_in, cfg.stepsize_ce, cfg.stepsize_ss)
    (2 * fused).backward()  # the incoming gradient is applied
    assert torch.allclose(fused, spm_loss(y, cfg))
    assert torch.allclose(fused_in.grad, 2 * ref.grad)
    # bf16 input: fp32 loss, gradient in the input's dtype
    y16 = torch.randn(1, 8, 9, 10, generator=g).bfloat16().requires_grad_(True)
    value = FusedSPMLoss.apply(y16, 1.0, 5.0)
    value.backward()
    assert value.dtype == torch.float32 and y16.grad.dtype == torch.bfloat16
    assert torch.isclose(value, spm_loss(y16.detach(), SPMTrainConfig()), rtol=1e-5)


def _fit(exact: bool, seed: int, image: torch.Tensor) -> torch.Tensor:
    cfg = SPMTrainConfig(n_channels=16, n_conv=2, max_iter=4)
    trainer = CSNetTrainer(cfg, torch.device("cpu"), exact=exact, compile=False)
    return trainer.fit(image, seed=seed).float()


def test_same_seed_same_embeddings_and_loss_decreases():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 24, 20, generator=g)
    a, b = _fit(True, 3, image), _fit(True, 3, image)
    assert a.shape == (24 * 20, 16)
    assert torch.equal(a, b)
    assert not torch.equal(a, _fit(True, 4, image))
    losses = []
    cfg = SPMTrainConfig(n_channels=16, n_conv=2, max_iter=6)
    CSNetTrainer(cfg, torch.device("cpu"), exact=True).fit(image, 0, on_step=lambda i, v: losses.append(v))
    assert len(losses) == 6 and losses[-1] < losses[0]


def test_fast_path_eager_matches_exact_closely():
    image = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(1))
    exact, fast = _fit(True, 0, image), _fit(False, 0, image)
    assert fast.shape == exact.shape
    # bf16 autocast (where supported) changes low bits only
    cos = F.cosine_similarity(exact, fast, dim=1)
    assert cos.mean() > 0.97


def test_csnet_step_flops_from_the_layer_shapes():
    from SPM.model import csnet_step_flops

    # 1 px, 3 -> 2 channels, 2 conv blocks: first 2*3*2*9 = 108, middle 2*2*2*9 = 72, last 1x1 2*2*2 = 8
    forward = 108 + 72 + 8
    assert csnet_step_flops(1, 1, 3, 2, 2) == 3 * forward - 108
    assert csnet_step_flops(10, 20, 3, 2, 2) == 200 * (3 * forward - 108)


def test_conv_ceiling_is_a_positive_rate():
    from common.hardware import conv_ceiling_gflops

    assert conv_ceiling_gflops(8, 16, 16, repeats=1) > 0
