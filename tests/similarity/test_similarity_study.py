"""The pwcca study's new measurements: clustering by distance, the adjusted Rand index, peer
similarity, and criteria that fail on random or reversed figures."""

import numpy as np
import pytest

from etude.similarity.experiments import peer_similarity
from etude.similarity.study import PwccaStudy
from etude.similarity.summary import adjusted_rand, cluster_by_distance, kmeans_1d, symmetric_distance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjusted_rand_matches_scikit_learn(seed):
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 3, 30), rng.integers(0, 4, 30)
    assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(b, a), abs=1e-12)
    assert adjusted_rand(a, (a + 1) % 3) == pytest.approx(1.0)  # a relabelling is the same partition


def test_clustering_recovers_blocks_of_a_distance_matrix():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 4)
    d = np.where(truth[:, None] == truth[None, :], 0.1, 0.6) + 0.05 * rng.random((12, 12))
    labels = cluster_by_distance(symmetric_distance(1 - d), 3)
    assert adjusted_rand(labels, truth) == pytest.approx(1.0)
    assert adjusted_rand(kmeans_1d([0.1, 0.11, 0.5, 0.52, 0.9, 0.91], 3), [0, 0, 1, 1, 2, 2]) == pytest.approx(1.0)
    s = rng.random((4, 4))
    dist = symmetric_distance(s)
    assert np.allclose(dist, dist.T) and np.allclose(np.diag(dist), 0)


def test_peer_similarity_averages_both_directions_within_groups():
    m = np.arange(16, dtype=float).reshape(4, 4)
    out = peer_similarity([m, 2 * m], [[0, 1], [2, 3]])
    assert out[0] == pytest.approx(1.5 * (m[0, 1] + m[1, 0]) / 2)
    assert out[3] == pytest.approx(1.5 * (m[2, 3] + m[3, 2]) / 2)


def _claim(name):
    return {c.id: c for c in PwccaStudy().claims()}[name]


def test_cluster_criterion_fails_on_random_clusters():
    p, claim = PwccaStudy.presets["quick"], _claim("lr_clusters")
    base = {"learning_rates": [1e-3, 1e-2, 1e-1], "truth": [0] * 4 + [1] * 4 + [2] * 4, "test_accuracy": [0.9] * 12}
    PwccaStudy._decide_clusters(claim, {**base, "clusters": [0, 1, 2] * 4, "ari_pwcca": adjusted_rand(
        [0, 1, 2] * 4, base["truth"]), "ari_accuracy": 0.0}, p)
    assert claim.verdict == "fails"
    PwccaStudy._decide_clusters(claim, {**base, "clusters": base["truth"], "ari_pwcca": 1.0, "ari_accuracy": 1.0}, p)
    assert claim.verdict == "fails"  # no better than clustering the accuracies
    PwccaStudy._decide_clusters(claim, {**base, "clusters": base["truth"], "ari_pwcca": 1.0, "ari_accuracy": 0.1}, p)
    assert claim.verdict == "holds"


def test_tracking_criterion_fails_when_similarity_and_accuracy_disagree():
    claim = _claim("similarity_tracks_accuracy")
    acc = list(np.linspace(0.9, 0.97, 15))
    PwccaStudy._decide_tracks(claim, {"peers": acc[::-1], "accuracies": acc, "tracks": -1.0})
    assert claim.verdict == "fails"
    PwccaStudy._decide_tracks(claim, {"peers": acc, "accuracies": acc, "tracks": 1.0})
    assert claim.verdict == "holds"
