"""The four set models: shapes, masks, summary invariances, encoding new distributions, bad input."""

import pytest
import torch

from etude.errors import BadInputError
from etude.meta import VAE, MetaVAE, NeuralStatistician, SetSummary, VariationalHomoencoder

NAMES = ["metavae", "vae", "ns", "vhe"]
D, Z, M = 3, 2, 4


def make(name: str, seed: int = 0, likelihood: str = "gaussian"):
    """A tiny model of each kind (D=3, Z=2, 4 training distributions), float64."""
    torch.manual_seed(seed)
    model = {
        "metavae": lambda: MetaVAE(D, Z, M, hidden=8, likelihood=likelihood),
        "vae": lambda: VAE(D, Z, M, hidden=8, likelihood=likelihood),
        "ns": lambda: NeuralStatistician(D, Z, c_dim=3, hidden=8, likelihood=likelihood),
        "vhe": lambda: VariationalHomoencoder(D, Z, c_dim=3, hidden=8, likelihood=likelihood, dataset_size=50),
    }[name]()
    return model.double()


def data(seed: int, b: int = 3, n: int = 5, c: int = 6):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n, D, generator=g, dtype=torch.float64), torch.randn(b, c, D, generator=g, dtype=torch.float64),
            torch.randint(M, (b,), generator=g))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_finite_gradients(name, likelihood):
    model = make(name, likelihood=likelihood)
    x, ctx, index = data(0)
    if likelihood == "bernoulli":
        x, ctx = torch.sigmoid(x), torch.sigmoid(ctx)
    terms = model.elbo(x, ctx, index, generator=torch.Generator().manual_seed(0))
    for t in (terms.elbo, terms.recon, terms.kl, terms.kl_global):
        assert t.shape == (3,) and bool(torch.isfinite(t).all())
    assert bool((terms.kl >= 0).all()) and bool((terms.kl_global >= 0).all())
    assert torch.allclose(terms.elbo, terms.recon - terms.kl - terms.kl_global)
    model.loss(x, ctx, index).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)
    assert all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    assert model.encode(x, ctx).shape == (3, 5, Z)
    assert model.log_likelihood(x, ctx, index, n_samples=4).shape == (3, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", ["metavae", "ns", "vhe"])
def test_encoding_is_invariant_to_context_order_and_batch(name, seed):
    model = make(name, seed)
    x, ctx, _ = data(seed)
    codes = model.encode(x, ctx)
    perm = torch.randperm(ctx.shape[1], generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(model.encode(x, ctx[:, perm]), codes, atol=1e-12)
    # one distribution alone gives the same codes as inside a batch of three
    assert torch.allclose(model.encode(x[1:2], ctx[1:2]), codes[1:2], atol=1e-12)
    # the context's size does not scale the summary: a context repeated twice is the same distribution
    assert torch.allclose(model.encode(x, torch.cat([ctx, ctx], 1)), codes, atol=1e-12)
    # ...but a different context does change the codes (the summary is used at all)
    assert not torch.allclose(model.encode(x, ctx + 1.0), codes, atol=1e-6)


@pytest.mark.parametrize("name", ["metavae", "ns", "vhe"])
def test_masked_padding_equals_the_shorter_context(name):
    model = make(name)
    x, ctx, index = data(3)
    sizes = torch.tensor([2, 6, 4])
    mask = torch.arange(6)[None] < sizes[:, None]
    padded = torch.where(mask[..., None], ctx, torch.full_like(ctx, 1e3))  # garbage where masked
    codes = model.encode(x, padded, context_mask=mask)
    for b, n in enumerate(sizes.tolist()):
        alone = model.encode(x[b : b + 1], ctx[b : b + 1, :n])
        assert torch.allclose(codes[b : b + 1], alone, atol=1e-12)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    padded_terms = model.elbo(x, padded, index, context_mask=mask, generator=g1)
    assert bool(torch.isfinite(padded_terms.elbo).all())
    x_mask = torch.tensor([[True] * 5, [True, True, False, False, False], [True] * 5])
    masked = model.elbo(x, ctx, index, x_mask=x_mask, generator=g2)
    assert bool(torch.isfinite(masked.elbo).all())


def test_set_summary_is_a_mean_over_elements():
    torch.manual_seed(0)
    summary = SetSummary(D, 8, 4).double()
    ctx = torch.randn(2, 7, D, dtype=torch.float64)
    assert torch.allclose(summary(ctx), summary.h(ctx).mean(1))


@pytest.mark.parametrize("name", NAMES)
def test_encoding_a_new_distribution_takes_no_gradient_step(name):
    model = make(name)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, ctx, _ = data(7)
    new = x * 3.0 + 5.0  # a distribution no decoder was trained for; no index needed
    codes = model.encode(new, ctx * 3.0 + 5.0)
    assert not codes.requires_grad and codes.shape == (3, 5, Z)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # encode restores the mode it found
    assert torch.equal(model.encode(new, ctx * 3.0 + 5.0), codes)  # deterministic: posterior means


def test_ns_uses_the_set_itself_as_context_and_vhe_weights_kl_c_by_dataset_size():
    ns, vhe = make("ns"), make("vhe")
    vhe.load_state_dict(ns.state_dict())
    x, ctx, _ = data(1)
    a = ns.elbo(x, generator=torch.Generator().manual_seed(2))
    b = ns.elbo(x, x, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(a.elbo, b.elbo)
    n_term = ns.elbo(x, ctx, generator=torch.Generator().manual_seed(3))
    v_term = vhe.elbo(x, ctx, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(n_term.kl_global * x.shape[1] / 50, v_term.kl_global)  # KL(c) / |X| with |X| = 50
    assert torch.allclose(n_term.recon, v_term.recon) and torch.allclose(n_term.kl, v_term.kl)


def test_vae_ignores_context_and_per_distribution_encoders_need_index():
    vae = make("vae")
    x, ctx, _ = data(2)
    assert torch.equal(vae.encode(x, ctx), vae.encode(x, ctx + 10.0))
    torch.manual_seed(0)
    separate = VAE(D, Z, M, hidden=8, shared_encoder=False).double()
    with pytest.raises(BadInputError, match="needs index"):
        separate.encode(x)
    a, b = separate.encode(x, index=torch.tensor([0, 1, 2])), separate.encode(x, index=torch.tensor([3, 1, 2]))
    assert torch.equal(a[1:], b[1:]) and not torch.allclose(a[0], b[0])


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_names_the_argument(name):
    model = make(name)
    x, ctx, index = data(0)
    with pytest.raises(BadInputError, match="x must have shape"):
        model.elbo(x[..., :2], ctx, index)
    with pytest.raises(BadInputError, match="x must be a torch.Tensor"):
        model.encode(x.tolist(), ctx)
    with pytest.raises(BadInputError, match="NaN"):
        model.encode(x * float("nan"), ctx)
    with pytest.raises(BadInputError, match="context must hold 3 distributions"):
        model.elbo(x, ctx[:2], index)
    with pytest.raises(BadInputError, match="context_mask"):
        model.encode(x, ctx, context_mask=torch.zeros(3, 6, dtype=torch.bool))
    with pytest.raises(BadInputError, match="n_samples"):
        model.log_likelihood(x, ctx, index, n_samples=0)
    if model.needs_index:
        with pytest.raises(BadInputError, match="index values must lie"):
            model.elbo(x, ctx, torch.tensor([0, 1, M]))
        with pytest.raises(BadInputError, match="needs index"):
            model.elbo(x, ctx)
    if name in ("metavae", "vhe"):
        with pytest.raises(BadInputError, match="context"):
            model.encode(x)


def test_constructor_arguments_are_checked():
    with pytest.raises(BadInputError, match="likelihood"):
        MetaVAE(2, 1, 3, likelihood="poisson")
    with pytest.raises(BadInputError, match="z_dim"):
        MetaVAE(2, 0, 3)
    with pytest.raises(BadInputError, match="n_distributions"):
        VAE(2, 1, 0)
    with pytest.raises(BadInputError, match="dataset_size"):
        VariationalHomoencoder(2, 1, dataset_size=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elbo_draws_the_set_latent_then_z_from_the_generator(seed):
    """The Neural Statistician's ELBO (Edwards & Storkey Eq. 6 / |X|) by hand, eps_c then eps_z from one generator."""
    from etude.meta.elbo import gaussian_kl

    model = make("ns", seed)
    x, _, _ = data(seed)
    g = torch.Generator().manual_seed(seed)
    mu_c, logvar_c = model.c_head(model.summary(x)).chunk(2, dim=-1)
    logvar_c = logvar_c.clamp(-10, 6)
    c = mu_c + torch.exp(logvar_c / 2) * torch.randn(mu_c.shape, generator=g, dtype=x.dtype)
    tiled = c.unsqueeze(1).expand(-1, x.shape[1], -1)
    mu, logvar = model.encoder(torch.cat([x, tiled], -1)).chunk(2, dim=-1)
    logvar = logvar.clamp(-10, 6)
    z = mu + torch.exp(logvar / 2) * torch.randn(mu.shape, generator=g, dtype=x.dtype)
    p_mu, p_logvar = model.prior_net(c).chunk(2, dim=-1)
    recon = model.log_px(x, model.decoder(torch.cat([z, tiled], -1))).mean(1)
    kl = gaussian_kl(mu, logvar, p_mu.unsqueeze(1), p_logvar.clamp(-10, 6).unsqueeze(1)).mean(1)
    expected = recon - kl - gaussian_kl(mu_c, logvar_c) / x.shape[1]
    found = model.elbo(x, generator=torch.Generator().manual_seed(seed)).elbo
    assert torch.allclose(found, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_noise_drawn_for_the_batch_and_sliced_like_its_sets_gives_their_terms(name):
    """What a data-parallel rank computes on its slice of the sets equals those sets' terms in the whole batch."""
    model = make(name)
    x, ctx, index = data(3, b=4)
    noise = model.noise(4, x.shape[1], torch.Generator().manual_seed(5), dtype=x.dtype)
    whole = model.elbo(x, ctx, index, noise=noise)
    assert torch.equal(whole.elbo, model.elbo(x, ctx, index, generator=torch.Generator().manual_seed(5)).elbo)
    for part in (slice(0, 2), slice(2, 4)):
        terms = model.elbo(x[part], ctx[part], index[part], noise={k: v[part] for k, v in noise.items()})
        assert torch.allclose(terms.elbo, whole.elbo[part], rtol=0, atol=1e-12)
    other = model.noise(4, x.shape[1], torch.Generator().manual_seed(6), dtype=x.dtype)
    assert not torch.allclose(model.elbo(x, ctx, index, noise=other).elbo, whole.elbo)
    assert set(noise) == ({"c", "z"} if name in ("ns", "vhe") else {"z"})


@pytest.mark.parametrize("name", NAMES)
def test_noise_of_the_wrong_shape_is_refused(name):
    model = make(name)
    x, ctx, index = data(0)
    noise = model.noise(2, x.shape[1], dtype=x.dtype)  # for 2 sets, given 3
    with pytest.raises(BadInputError, match="noise must map"):
        model.elbo(x, ctx, index, noise=noise)
    with pytest.raises(BadInputError, match="noise must map"):
        model.elbo(x, ctx, index, noise={"w": torch.zeros(1)})
