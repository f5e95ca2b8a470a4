"""BRUNO training: the process-parameter schedule, determinism, resume after a kill, early stopping, data."""

import pytest
import torch

import etude.exchangeable.training as training
from etude.errors import BadInputError, CheckpointError
from etude.exchangeable import (
    Bruno,
    knn_predict,
    load_digit_splits,
    nearest_neighbour_predict,
    process_grad_scale,
    sample_episodes,
    sample_sequences,
    train_bruno,
)


def _setup(seed=0):
    torch.manual_seed(seed)
    model = Bruno.build((1, 8, 8), 17, flow="realnvp", hidden=2, blocks=0)
    data = torch.randint(0, 17, (40, 1, 8, 8)).float()
    labels = torch.arange(40) % 2

    def batches(g):
        return sample_sequences(data, labels, 2, 5, g)[0]

    return model, batches


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_schedule():
    assert [process_grad_scale(s) for s in (0, 99, 100, 500)] == [0.0, 0.0, 0.1, 0.1]
    assert process_grad_scale(3, warmup=2, scale=0.5) == 0.5


def test_process_frozen_during_warmup_then_learns():
    model, batches = _setup()
    before = {k: v.clone() for k, v in model.process.state_dict().items()}
    flow_before = _state(model.flow)
    train_bruno(model, batches, 3, warmup=3, lr=1e-2)
    assert all(torch.equal(before[k], v) for k, v in model.process.state_dict().items())
    assert any(not torch.equal(flow_before[k], v) for k, v in model.flow.state_dict().items())
    train_bruno(model, batches, 2, warmup=0, lr=1e-2)
    assert not torch.equal(before["b"], model.process.b.detach())


def test_same_seed_same_run():
    a, batches = _setup()
    b, _ = _setup()
    log_a = train_bruno(a, batches, 4, warmup=1, seed=3)
    log_b = train_bruno(b, batches, 4, warmup=1, seed=3)
    assert log_a.loss == log_b.loss
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    val = torch.rand(2, 5, 1, 8, 8) * 17
    kw = dict(warmup=2, seed=1, checkpoint_every=3, eval_every=2, val=val)
    reference, batches = _setup()
    ref_log = train_bruno(reference, batches, 7, **kw)
    model, _ = _setup()
    calls = {"n": 0}

    def dying(g):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return batches(g)

    with pytest.raises(KeyboardInterrupt):
        train_bruno(model, dying, 7, checkpoint=tmp_path / "c.pt", **kw)
    fresh, _ = _setup(seed=9)  # different init: everything must come from the checkpoint
    log = train_bruno(fresh, batches, 7, checkpoint=tmp_path / "c.pt", resume=True, **kw)
    assert log.loss == ref_log.loss and log.val_loss == ref_log.val_loss and log.best_step == ref_log.best_step
    assert all(torch.equal(x, y) for x, y in zip(fresh.state_dict().values(), reference.state_dict().values()))
    with pytest.raises(CheckpointError, match="another run"):
        train_bruno(fresh, batches, 8, checkpoint=tmp_path / "c.pt", resume=True, **kw)


def test_early_stopping_keeps_the_best_validation_parameters(monkeypatch):
    model, batches = _setup()
    val = torch.rand(2, 5, 1, 8, 8) * 17
    log = train_bruno(model, batches, 6, warmup=0, lr=0.05, eval_every=2, val=val)
    assert log.val_steps == [0, 2, 4, 6]
    assert log.best_val == min(log.val_loss) and log.best_step == log.val_steps[log.val_loss.index(log.best_val)]
    with torch.no_grad():
        assert abs(float(model.loss(val)) - log.best_val) < 1e-5


def test_bad_training_arguments():
    model, batches = _setup()
    with pytest.raises(BadInputError, match="steps"):
        train_bruno(model, batches, -1)
    with pytest.raises(BadInputError, match="eval_every"):
        train_bruno(model, batches, 1, eval_every=0)


def test_digit_splits():
    s = load_digit_splits(0)
    seen = torch.cat([s.train_y, s.val_y, s.test_y])
    assert set(seen.tolist()) == {0, 2, 4, 6, 8} and set(s.unseen_y.tolist()) == {1, 3, 5, 7, 9}
    assert len(seen) + len(s.unseen_y) == 1797
    assert s.train_x.shape[1:] == (1, 8, 8) and s.train_x.max() == 16 and s.train_x.min() == 0
    flat = torch.cat([s.train_x, s.val_x, s.test_x]).flatten(1)
    assert len(torch.unique(flat, dim=0)) >= len(flat) - 5  # splits of distinct images (digits has a few duplicates)
    assert torch.equal(load_digit_splits(0).test_x, s.test_x) and not torch.equal(load_digit_splits(1).test_x, s.test_x)


def test_sequences_and_episodes_are_same_class():
    images = torch.arange(60.0).reshape(60, 1, 1, 1)  # image value = index; class = index % 3
    labels = torch.arange(60) % 3
    seqs, cls = sample_sequences(images, labels, 8, 6, torch.Generator().manual_seed(0))
    idx = seqs.flatten(1).long()
    assert seqs.shape == (8, 6, 1, 1, 1) and torch.equal(idx % 3, cls.unsqueeze(1).expand(8, 6))
    assert all(len(set(row.tolist())) == 6 for row in idx)
    support, query = sample_episodes(images, labels, 3, 2, 5, torch.Generator().manual_seed(1))
    assert support.shape == (5, 3, 2, 1, 1, 1) and query.shape == (5, 3, 1, 1, 1)
    s, q = support.flatten(2).long() % 3, query.flatten(1).long() % 3
    assert torch.equal(s, q.unsqueeze(-1).expand(5, 3, 2))
    with pytest.raises(BadInputError, match="ways"):
        sample_episodes(images, labels, 4, 1, 2)
    with pytest.raises(BadInputError, match="at least 30"):
        sample_sequences(images, labels, 2, 30)


def test_pixel_baselines():
    support = torch.tensor([[[[0.0]], [[10.0]]], [[[5.0]], [[6.0]]]]).reshape(1, 2, 2, 1)  # [E=1, ways=2, shots=2, 1]
    query = torch.tensor([[[9.0], [0.5], [5.4]]])  # [E=1, q=3, 1]
    assert nearest_neighbour_predict(support, query).tolist() == [[0, 0, 1]]
    train = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    assert knn_predict(train, labels, torch.tensor([[0.5], [10.4], [6.5]]), k=3).tolist() == [0, 1, 1]
    with pytest.raises(BadInputError, match="k must"):
        knn_predict(train, labels, train, k=9)
