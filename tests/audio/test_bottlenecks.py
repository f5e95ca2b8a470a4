import math

import pytest
import torch

from etude.audio import ArgmaxQuantizer, VectorQuantizer, code_entropy, codebook_usage
from etude.errors import BadInputError


def z_of(seed: int, dim: int, batch: int = 3, time: int = 10) -> torch.Tensor:
    return torch.randn(batch, dim, time, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ema", [None, 0.9])
def test_vq_nearest_code_round_trip_and_straight_through(seed, ema):
    torch.manual_seed(seed)
    vq = VectorQuantizer(8, 4, ema=ema).eval()
    z = z_of(seed, 4)
    out = vq(z)
    flat = z.detach().transpose(1, 2).reshape(-1, 4)
    book = vq.codebook.detach()
    brute = torch.tensor([min(range(8), key=lambda k: float((row - book[k]).pow(2).sum())) for row in flat])
    assert torch.equal(out.indices.reshape(-1), brute)
    assert torch.allclose(out.codes, vq.lookup(out.indices), atol=1e-6)  # index -> code round trip
    w = torch.randn_like(out.codes)
    (grad,) = torch.autograd.grad((out.codes * w).sum(), z)
    assert torch.allclose(grad, w)  # straight-through: d codes / d z = identity


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_argmax_codes_are_one_hot_with_the_gradient_of_q(seed):
    amae = ArgmaxQuantizer(6, diversity=0.0)
    z = z_of(seed, 6)
    out = amae(z)
    assert torch.equal(out.codes.detach(), torch.nn.functional.one_hot(out.indices, 6).transpose(1, 2).float())
    w = torch.randn_like(out.codes)
    (grad,) = torch.autograd.grad((out.codes * w).sum(), z)
    r = torch.relu(z)
    q = r / (r.sum(1, keepdim=True) + amae.eps)
    (expected,) = torch.autograd.grad((q * w).sum(), z)
    assert torch.allclose(grad, expected, atol=1e-6)
    assert grad.abs().sum() > 0


def test_diversity_loss_zero_when_uniform_and_pushes_towards_uniform():
    k = 4
    amae = ArgmaxQuantizer(k, diversity=1.0)
    uniform = torch.eye(k).unsqueeze(0).repeat(2, 1, 1)  # every code equally often, q one-hot
    assert amae(uniform).loss.item() == pytest.approx(0.0, abs=1e-9)
    collapsed = torch.zeros(1, k, 8)
    collapsed[:, 0] = 1.0
    assert amae(collapsed).loss.item() == pytest.approx(((k - 1) ** 2 + (k - 1)) / k, rel=1e-4)
    z = (collapsed + 0.1).requires_grad_(True)
    amae(z).loss.backward()
    assert z.grad[:, 0].mean() > 0 > z.grad[:, 1].mean()  # descent lowers the over-used code


def test_restarts_make_dead_codes_usable_on_the_next_step():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, ema=0.9, restart_threshold=0.5)
    vq.codebook.data[2:] = 100.0  # six codes far from every input: dead
    vq.ema_sum.copy_(vq.codebook.data)
    vq.usage.fill_(1.0)
    vq.usage[2:] = 0.0
    z = torch.randn(1, 2, 64, generator=torch.Generator().manual_seed(1))
    vq.train()(z)
    vq.eval()
    assert codebook_usage(vq(z).indices, 8) > 2
    assert (vq.codebook[2:].abs() < 10).all()
    without = VectorQuantizer(8, 2, ema=0.9)
    without.codebook.data.copy_(vq.codebook.data)
    without.codebook.data[2:] = 100.0
    assert codebook_usage(without.eval()(z).indices, 8) <= 2  # the same dead codes stay dead without restarts


def test_kmeans_init_uses_the_data():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, kmeans_init=True)
    centres = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    z = (centres.repeat(16, 1) + 0.1 * torch.randn(64, 2)).t().unsqueeze(0)
    vq.train()(z)
    assert codebook_usage(vq.eval()(z).indices, 4) == 4


@pytest.mark.parametrize("k", [2, 16, 256])
def test_entropy_and_usage(k):
    uniform = torch.arange(k).repeat(3)
    assert code_entropy(uniform, k) == pytest.approx(math.log2(k))
    assert codebook_usage(uniform, k) == k
    assert code_entropy(torch.zeros(10, dtype=torch.long), k) == 0.0
    assert code_entropy(torch.tensor([0, 0, 0, 1]), k) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_bad_inputs():
    with pytest.raises(BadInputError, match="codes"):
        VectorQuantizer(1, 4)
    with pytest.raises(BadInputError, match="ema"):
        VectorQuantizer(4, 4, ema=1.5)
    with pytest.raises(BadInputError, match=r"expected a float tensor \[batch, 4, time\]"):
        VectorQuantizer(4, 4)(torch.zeros(2, 3, 5))
    with pytest.raises(BadInputError, match="diversity"):
        ArgmaxQuantizer(4, diversity=-1)


def test_restarts_fire_from_the_first_steps_of_a_fresh_quantizer():
    """A fresh quantizer's unused codes restart at once (the usage EMA starts at 0, not at a full count)."""
    torch.manual_seed(0)
    z = torch.randn(1, 2, 64, generator=torch.Generator().manual_seed(2)) + 50.0  # far from the initial codebook
    with_restarts = VectorQuantizer(16, 2, ema=0.99, restart_threshold=0.5).train()
    without = VectorQuantizer(16, 2, ema=0.99).train()
    without.codebook.data.copy_(with_restarts.codebook.data)
    without.ema_sum.copy_(with_restarts.ema_sum)
    for _ in range(3):
        with_restarts(z)
        without(z)
    assert codebook_usage(with_restarts.eval()(z).indices, 16) >= 8
    assert codebook_usage(without.eval()(z).indices, 16) <= 2


@pytest.mark.parametrize("seed", [0, 1])
def test_vq_straight_through_is_exactly_the_codebook_vector_and_codebook_learns_from_its_loss_only(seed):
    torch.manual_seed(seed)
    vq = VectorQuantizer(8, 4, beta=0.25).train()
    z = z_of(seed, 4)
    out = vq(z)
    assert torch.equal(out.codes.detach(), vq.codebook.detach()[out.indices].transpose(1, 2))  # bit for bit
    w = torch.randn_like(out.codes)
    (grad_book,) = torch.autograd.grad((out.codes * w).sum() + out.loss, vq.codebook)
    flat = z.detach().transpose(1, 2).reshape(-1, 4)
    book = vq.codebook.detach().clone().requires_grad_(True)
    reference = (flat - book[out.indices.reshape(-1)]).pow(2).mean()  # ||sg(z) - e||^2 (mean form)
    (expected,) = torch.autograd.grad(reference, book)
    assert torch.allclose(grad_book, expected, atol=1e-7)
    assert grad_book.abs().sum() > 0


def test_kmeans_init_seeds_usage_so_its_clusters_are_not_restarted_on_the_first_step():
    torch.manual_seed(0)
    means = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]])
    points = (means.repeat_interleave(10, 0) + 0.1 * torch.randn(40, 2))
    vq = VectorQuantizer(4, 2, ema=0.99, kmeans_init=True, restart_threshold=2.0).train()
    for _ in range(3):
        vq(points.t().unsqueeze(0))
    book = vq.codebook.detach()
    for mean in means:  # every true cluster keeps a code at its mean: none was thrown onto a random point
        assert float((book - mean).norm(dim=1).min()) < 0.2
    assert torch.allclose(vq.usage.sort().values, torch.full((4,), 10.0), atol=0.5)
