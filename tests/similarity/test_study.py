"""The pwcca study's new measurements: clustering by distance, the adjusted Rand index, peer
similarity, and criteria that fail on random or reversed figures."""

import functools

import numpy as np
import pytest
import torch

from etude.similarity import criteria
from etude.similarity.experiments import peer_similarity, subset_similarity
from etude.similarity.summary import adjusted_rand, cluster_by_distance, kmeans_1d, spearman, symmetric_distance
from etude.statistics import permutation_pvalue


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


def test_cluster_criterion_fails_on_random_clusters_and_reports_every_layer():
    truth = [0] * 4 + [1] * 4 + [2] * 4
    scrambled = [0, 1, 2] * 4
    _, p_random = permutation_pvalue(functools.partial(adjusted_rand, scrambled), truth, 199)
    random = {"ari": adjusted_rand(scrambled, truth), "p": p_random}
    _, p_perfect = permutation_pvalue(functools.partial(adjusted_rand, truth), truth, 199)
    perfect = {"ari": 1.0, "p": p_perfect}
    assert p_perfect < 0.01 and p_random > 0.5
    assert not criteria.lr_clusters([perfect, random, perfect], 2, 0.0, 3, 4)["holds"]  # only the preregistered layer
    assert not criteria.lr_clusters([random, perfect, random], 2, 1.0, 3, 4)["holds"]  # no better than accuracy
    verdict = criteria.lr_clusters([random, perfect, random], 2, 0.1, 3, 4)
    assert verdict["holds"] and verdict["conclusive"] and "1: ARI" in verdict["measured"]
    assert not criteria.lr_clusters([random, {"ari": 0.9, "p": 0.2}, random], 2, 0.1, 3, 4)["holds"]  # not significant
    assert criteria.late_layer(11) == 8 and criteria.late_layer(3) == 2 and criteria.late_layer(1) == 1


def test_tracking_criterion_fails_when_similarity_and_accuracy_disagree():
    acc = list(np.linspace(0.9, 0.97, 15))
    assert not criteria.similarity_tracks_accuracy(spearman(acc[::-1], acc), acc)["holds"]
    noise = np.random.default_rng(0)
    assert not criteria.similarity_tracks_accuracy(spearman(list(noise.random(15)), acc), acc)["holds"]
    assert criteria.similarity_tracks_accuracy(spearman(acc, acc), acc)["holds"]
    assert not criteria.similarity_tracks_accuracy(1.0, acc[:5])["conclusive"]


def _by_layer(gen, mem):
    return {m: {"gen-gen": [(v, 0.0) for v in gen], "mem-mem": [(v, 0.0) for v in mem]} for m in ("PWCCA", "CKA")}


def test_gen_more_similar_fails_on_a_constant_and_on_one_reversed_layer():
    assert not criteria.gen_more_similar(_by_layer([0.5] * 3, [0.5] * 3), 5, 0.95, 1.0)["holds"]  # equal groups
    reversed_top = criteria.gen_more_similar(_by_layer([0.9, 0.9, 0.7], [0.8, 0.8, 0.8]), 5, 0.95, 1.0)
    assert not reversed_top["holds"] and "layer 3" in reversed_top["note"]
    assert criteria.gen_more_similar(_by_layer([0.9, 0.9, 0.9], [0.8, 0.7, 0.6]), 5, 0.95, 1.0)["holds"]
    assert not criteria.gen_more_similar(_by_layer([0.9] * 3, [0.8] * 3), 5, 0.95, 0.5)["conclusive"]  # not memorized


def test_bottom_up_fails_on_a_constant_and_on_top_down():
    epochs = [1, 2, 4]
    assert not criteria.bottom_up({"PWCCA": [[0.5] * 3] * 3}, epochs, 5, 40)["holds"]
    assert not criteria.bottom_up({"PWCCA": [[0.3] * 3, [0.5] * 3, [0.7] * 3]}, epochs, 5, 40)["holds"]
    assert criteria.bottom_up({"PWCCA": [[0.9] * 3, [0.7] * 3, [0.5] * 3]}, epochs, 5, 40)["holds"]


def test_width_criterion_fails_when_the_untrained_control_rises_as_much():
    widths, acc = [16, 32, 64, 128], [0.95] * 4
    rising = [0.80, 0.85, 0.90, 0.95]
    assert not criteria.wider_more_similar(widths, rising, [0.3, 0.4, 0.5, 0.6], acc, 3, 16)["holds"]  # control +0.3
    assert not criteria.wider_more_similar(widths, [0.9] * 4, [0.5] * 4, acc, 3, 16)["holds"]  # constant
    noise = [0.90, 0.80, 0.95, 0.85]  # a shuffled order
    assert not criteria.wider_more_similar(widths, noise, [0.5] * 4, acc, 3, 16)["holds"]
    assert criteria.wider_more_similar(widths, rising, [0.5, 0.48, 0.46, 0.44], acc, 3, 16)["holds"]
    assert not criteria.wider_more_similar(widths, rising, [0.5] * 4, [0.5] * 4, 3, 16)["conclusive"]  # untrained nets


def test_subset_similarity_compares_the_same_units_of_the_top_layer():
    class Net:
        def __init__(self, top):
            self.top = top

        def representations(self, probe):
            return [probe, self.top]

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(400, 32)))
    units = np.array([0, 3, 5, 9])
    same = subset_similarity(
        [Net(x), Net(x[:, torch.randperm(32, generator=torch.Generator().manual_seed(0))])], x, units
    )
    assert same[0] < 0.9  # other units: only chance overlap
    twin = subset_similarity([Net(x), Net(x.clone())], x, units)
    assert twin[0] == pytest.approx(1.0, abs=1e-9)
