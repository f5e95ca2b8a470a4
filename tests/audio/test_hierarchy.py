import math

import pytest
import torch

from etude.audio import AutoEncoder, Hierarchy, HierarchyConfig, LevelConfig, load_hierarchy, save_hierarchy
from etude.audio.training import fit_hierarchy, train_model
from etude.errors import BadInputError, CheckpointError


def two_levels() -> HierarchyConfig:
    return HierarchyConfig((LevelConfig(classes=256, hop=4, codes=8, residual=4, skip=8, layers=3, encoder_channels=4),
                            LevelConfig(classes=8, hop=2, codes=4, bottleneck="vq", residual=4, skip=8, layers=2,
                                        encoder_channels=4, code_dim=3)),
                           prior_residual=4, prior_layers=2)


def test_hierarchy_encodes_and_samples_every_level(tmp_path):
    torch.manual_seed(0)
    model = Hierarchy(two_levels())
    assert model.total_hop == 8
    x = torch.randint(256, (2, 64))
    codes = model.encode_all(x)
    assert [c.shape for c in codes] == [(2, 16), (2, 8)]
    assert codes[0].max() < 8 and codes[1].max() < 4
    audio = model.sample(37, generator=torch.Generator().manual_seed(1))
    assert audio.shape == (37,) and audio.abs().max() <= 1
    save_hierarchy(tmp_path / "h.pt", model)
    again = load_hierarchy(tmp_path / "h.pt")
    assert torch.equal(again.sample(37, generator=torch.Generator().manual_seed(1)), audio)


def test_hierarchy_config_errors(tmp_path):
    bad = HierarchyConfig((LevelConfig(codes=8), LevelConfig(classes=16)))
    with pytest.raises(BadInputError, match="codes of the level below"):
        Hierarchy(bad)
    with pytest.raises(BadInputError, match="bottleneck"):
        LevelConfig(bottleneck="gumbel")
    with pytest.raises(BadInputError, match="needs a bottleneck"):
        Hierarchy(HierarchyConfig((LevelConfig(bottleneck="none"),)))
    torch.save({"kind": "other"}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError):
        load_hierarchy(tmp_path / "x.pt")


def test_information_bound_holds_on_a_trained_tiny_model():
    """iid uniform symbols over 4 classes: a 4-way code every 2 samples can save at most 2/2 bits per sample."""
    classes, k, hop, length = 4, 4, 2, 32
    g = torch.Generator().manual_seed(0)
    train = [torch.randint(classes, (20_000,), generator=g)]
    held_out = torch.randint(classes, (64, length), generator=g)
    nll = {}
    for name, bottleneck in (("uncond", "none"), ("amae", "amae")):
        torch.manual_seed(0)
        level = AutoEncoder(LevelConfig(classes=classes, hop=hop, codes=k, bottleneck=bottleneck, residual=8,
                                        skip=8, layers=2, encoder_channels=16, diversity=0.1))
        train_model(level, lambda x, m=level: m.losses(x)[0], train, steps=100, batch=16, length=length, lr=1e-2,
                    seed=0, desc=name)
        with torch.no_grad():
            nll[name] = level.losses(held_out)[1].item()
    gain, bound = nll["uncond"] - nll["amae"], math.log2(k) / hop
    assert nll["uncond"] == pytest.approx(2.0, abs=0.03)  # the unconditional model has nothing to learn
    print(nll, gain, bound)
    assert 0.1 < gain <= bound + 0.01, (nll, bound)


def test_training_resumes_to_the_same_weights(tmp_path):
    config = LevelConfig(classes=16, hop=4, codes=4, residual=4, skip=4, layers=2, encoder_channels=4)
    data = [torch.randint(16, (500,), generator=torch.Generator().manual_seed(0))]

    def run(steps: int, resume: bool, path) -> AutoEncoder:
        torch.manual_seed(0)
        level = AutoEncoder(config)
        train_model(level, lambda x: level.losses(x)[0], data, steps=steps, batch=2, length=16, lr=1e-2, seed=3,
                    checkpoint=path, resume=resume, tag="t", checkpoint_every=3)
        return level

    whole = run(6, False, tmp_path / "a.pt")
    run(3, False, tmp_path / "b.pt")
    resumed = run(6, True, tmp_path / "b.pt")
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match="another run"):
        train_model(resumed, lambda x: resumed.losses(x)[0], data, steps=6, batch=2, length=16, lr=1e-2, seed=3,
                    checkpoint=tmp_path / "b.pt", resume=True, tag="other")


def test_fit_hierarchy_trains_every_stage(tmp_path):
    torch.manual_seed(0)
    model = Hierarchy(two_levels())
    data = [torch.randint(256, (4000,), generator=torch.Generator().manual_seed(0))]
    curves = fit_hierarchy(model, data, steps=3, prior_steps=3, batch=2, length=64, prior_length=4, lr=1e-3, seed=0,
                           checkpoint_dir=tmp_path)
    assert set(curves) == {"level0", "level1", "prior"} and all(len(c) == 3 for c in curves.values())
    assert {p.name for p in tmp_path.iterdir()} == {"level0.pt", "level1.pt", "prior.pt"}


def test_first_symbol_is_drawn_from_its_fitted_marginal_not_fixed():
    torch.manual_seed(0)
    model = Hierarchy(two_levels())
    prior = model.prior.eval()
    firsts = prior.generate(2, batch=64, generator=torch.Generator().manual_seed(0))[:, 0]
    assert len(set(firsts.tolist())) > 1  # uniform p(x_0) before fitting: not always K/2
    prior.fit_first([torch.full((20000,), 3)])
    assert torch.allclose(prior.first_logits.exp().sum(), torch.tensor(1.0))
    firsts = prior.generate(2, batch=64, generator=torch.Generator().manual_seed(0))[:, 0]
    assert (firsts == 3).float().mean() > 0.95


def test_reconstruct_decodes_down_from_every_level():
    torch.manual_seed(0)
    model = Hierarchy(two_levels()).eval()
    x = torch.randint(256, (1, 64))
    low = model.reconstruct(x, 0, generator=torch.Generator().manual_seed(5))
    codes = model.encode_all(x)
    direct = model.levels[0].decode(codes[0], 64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(low, direct) and low.shape == (1, 64)
    top = model.reconstruct(x, 1, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    mid = model.levels[1].decode(codes[1], 16, generator=g)
    assert torch.equal(top, model.levels[0].decode(mid, 64, generator=g))
    with pytest.raises(BadInputError, match="level"):
        model.reconstruct(x, 2)
