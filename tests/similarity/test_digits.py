"""The study's library parts: digits data, seeded MLP training with snapshots and resume, summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from etude.errors import BadInputError, CheckpointError
from etude.similarity.digits import hidden_layers, load_digits_split, make_mlp, train_mlp
from etude.similarity.summary import between_groups, spearman, within_group


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_digits_split_and_shuffled_labels(digits):
    assert digits.x_train.shape == (1438, 64) and digits.x_test.shape == (359, 64)
    assert torch.allclose(digits.x_train.mean(0), torch.zeros(64), atol=1e-5)
    shuffled = digits.shuffled_labels(3)
    assert torch.equal(torch.bincount(shuffled), torch.bincount(digits.y_train))  # a relabelling, same counts
    assert torch.equal(shuffled, digits.shuffled_labels(3))
    assert float((shuffled == digits.y_train).double().mean()) < 0.2
    assert not torch.equal(shuffled, digits.shuffled_labels(4))


def test_make_mlp_is_seeded_and_names_hidden_layers():
    a, b, c = make_mlp([8, 6], seed=1), make_mlp([8, 6], seed=1), make_mlp([8, 6], seed=2)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b)))
    assert not torch.equal(_params(a)[0], _params(c)[0])
    assert hidden_layers(a) == ["relu1", "relu2"]
    with pytest.raises(BadInputError, match="widths"):
        make_mlp([8, 0], seed=0)


def test_training_is_deterministic_and_a_snapshot_is_the_shorter_run(digits):
    x, y = digits.x_train[:300], digits.y_train[:300]
    kw = dict(seed=5, lr=1e-2, batch_size=64)
    a = train_mlp([16, 8], x, y, epochs=3, snapshots=[1, 2, 3, 9], **kw)
    b = train_mlp([16, 8], x, y, epochs=3, **kw)
    one = train_mlp([16, 8], x, y, epochs=1, **kw)
    assert all(torch.equal(p, q) for p, q in zip(_params(a.model), _params(b.model)))
    assert sorted(a.snapshots) == [1, 2]  # only epochs before the last
    assert all(torch.equal(p, q) for p, q in zip(one.model.state_dict().values(), a.snapshots[1].values()))
    reps = a.representations(x[:50], epoch=1)
    assert [r.shape for r in reps] == [(50, 16), (50, 8)] and reps[0].dtype == torch.float64
    assert all(torch.allclose(r, s) for r, s in zip(reps, one.representations(x[:50])))
    assert a.train_accuracy > 0.3  # chance is 0.1
    with pytest.raises(BadInputError, match="epoch 7"):
        a.representations(x, epoch=7)


def test_resume_loads_the_checkpoint_and_refuses_another_run(digits, tmp_path):
    x, y = digits.x_train[:200], digits.y_train[:200]
    ckpt = tmp_path / "net.pt"
    first = train_mlp([8], x, y, seed=1, epochs=2, snapshots=[1], checkpoint=ckpt)
    again = train_mlp([8], x, y, seed=1, epochs=2, snapshots=[1], checkpoint=ckpt, resume=True)
    assert all(torch.equal(p, q) for p, q in zip(_params(first.model), _params(again.model)))
    assert again.snapshots.keys() == first.snapshots.keys()
    with pytest.raises(CheckpointError, match="another run"):
        train_mlp([8], x, y, seed=1, epochs=3, checkpoint=ckpt, resume=True)
    with pytest.raises(CheckpointError, match="another run"):  # other labels, same sizes
        train_mlp([8], x, y.flip(0), seed=1, epochs=2, snapshots=[1], checkpoint=ckpt, resume=True)


def test_summaries():
    m = np.array([[1.0, 0.8, 0.1], [0.6, 1.0, 0.3], [0.2, 0.4, 1.0]])
    assert within_group(m, [0, 1]) == pytest.approx((0.7, 0.1))
    assert between_groups(m, [0], [2]) == pytest.approx((0.15, 0.05))
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(np.sqrt(3) / 2)  # average ranks for ties
    with pytest.raises(BadInputError):
        within_group(m, [0])


def test_cnn_is_seeded_and_its_conv_layers_become_position_datapoints(digits):
    from etude.similarity.digits import make_cnn, make_net, representations

    a, b = make_cnn([4, 3], seed=1), make_net("cnn", [4, 3], seed=1)
    assert all(torch.equal(p, q) for p, q in zip(_params(a), _params(b)))
    assert hidden_layers(a) == ["relu1", "relu2"]
    reps = representations(a, digits.x_train[:10])
    assert [tuple(r.shape) for r in reps] == [(640, 4), (640, 3)]  # 10 images x 64 positions, channels
    out = a(digits.x_train[:10])
    assert out.shape == (10, 10)
    # the first conv layer's channel c at pixel (i, j) of image n is row n * 64 + i * 8 + j of column c
    acts = torch.relu(a.conv1(digits.x_train[:2].reshape(2, 1, 8, 8)))
    assert torch.allclose(reps[0][64 + 3 * 8 + 5], acts[1, :, 3, 5].double())
    with pytest.raises(BadInputError, match="arch"):
        make_net("rnn", [4], seed=0)


def test_cnn_training_and_snapshots(digits):
    x, y = digits.x_train[:200], digits.y_train[:200]
    net = train_mlp([4, 4], x, y, seed=0, epochs=2, lr=1e-2, batch_size=64, snapshots=[1], arch="cnn")
    assert net.arch == "cnn" and 0.0 <= net.train_accuracy <= 1.0
    early = net.representations(x[:5], 1)
    assert [tuple(r.shape) for r in early] == [(320, 4), (320, 4)]
