"""Training and measuring: determinism, resume after a kill, learning, clustering error, probes."""

import numpy as np
import pytest
import torch

import etude.meta.training as training
from etude.errors import BadInputError, CheckpointError
from etude.meta import MetaVAE, clustering_error, fit, kmeans_labels, linear_probe_accuracy, sample_mog_family


def tiny(seed=0):
    torch.manual_seed(seed)
    return MetaVAE(2, 1, 6, hidden=8)


def family():
    return sample_mog_family(6, generator=torch.Generator().manual_seed(0)).x


def test_same_seed_same_parameters_and_other_seed_differs():
    runs = []
    for seed in (3, 3, 4):
        model = tiny()
        fit(model, family(), 8, n_sets=4, n_x=5, n_context=5, seed=seed)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    kw = dict(n_sets=4, n_x=5, n_context=5, min_context=2, seed=1, checkpoint_every=4)
    reference = tiny()
    ref_losses = fit(reference, family(), 12, checkpoint=tmp_path / "ref.pt", **kw)
    real = training.sample_batch
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "sample_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny(), family(), 12, checkpoint=tmp_path / "run.pt", **kw)
    monkeypatch.setattr(training, "sample_batch", real)
    resumed = tiny(seed=99)  # initialization is overwritten by the checkpoint
    losses = fit(resumed, family(), 12, checkpoint=tmp_path / "run.pt", resume=True, **kw)
    assert losses == ref_losses
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="another run"):
        fit(tiny(), family(), 12, checkpoint=tmp_path / "run.pt", resume=True, **{**kw, "seed": 2})


def test_training_lowers_the_loss():
    model = tiny()
    losses = fit(model, family(), 100, n_sets=6, n_x=20, n_context=20, lr=3e-3)
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) - 0.5


def test_fit_rejects_bad_input():
    with pytest.raises(BadInputError, match="decoders"):
        fit(tiny(), sample_mog_family(3).x, 2)
    with pytest.raises(BadInputError, match="context must be one of"):
        fit(tiny(), family(), 2, context="other")
    with pytest.raises(BadInputError, match="steps"):
        fit(tiny(), family(), -1)
    with pytest.raises(BadInputError, match="data must be"):
        fit(tiny(), family()[..., :1], 2)


def test_clustering_error_is_invariant_to_label_names():
    truth = np.array([0, 0, 1, 1, 1, 2])
    assert clustering_error(truth, truth) == 0.0
    assert clustering_error((truth + 1) % 3, truth) == 0.0
    assert clustering_error(np.array([1, 1, 0, 0, 1, 2]), truth) == pytest.approx(1 / 6)
    assert clustering_error(np.zeros(4, int), np.array([0, 0, 1, 1])) == pytest.approx(0.5)
    with pytest.raises(BadInputError, match="one length"):
        clustering_error(truth[:3], truth)


def test_kmeans_separates_far_blobs_and_the_probe_reads_linear_labels():
    g = np.random.default_rng(0)
    points = np.concatenate([g.normal(-5, 0.5, (50, 2)), g.normal(5, 0.5, (50, 2))])
    truth = np.repeat([0, 1], 50)
    assert clustering_error(kmeans_labels(points, 2, seed=0), truth) == 0.0
    feats = g.normal(size=(200, 3))
    y = (feats[:, 0] + feats[:, 1] > 0).astype(int)
    assert linear_probe_accuracy(feats[:100], y[:100], feats[100:], y[100:]) > 0.9
    noise = g.normal(size=(200, 3))
    assert linear_probe_accuracy(noise[:100], y[:100], noise[100:], y[100:]) < 0.75
    with pytest.raises(BadInputError, match="probe shapes"):
        linear_probe_accuracy(feats[:100], y[:99], feats[100:], y[100:])
