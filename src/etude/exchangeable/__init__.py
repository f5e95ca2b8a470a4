"""Exchangeable sequence models: Student-t and Gaussian processes, and BRUNO (Korshunova et al. 2018).

Import what you need from here::

    from etude.exchangeable import Bruno, StudentTProcess
    process = StudentTProcess(dim=64, nu=1000.0, var=1.0, corr=0.1)
    log_p = process.sequence_log_prob(z)          # z [batch, n, 64] -> [batch, n]
    model = Bruno.build((1, 8, 8), levels=17, flow="realnvp", process="tp")
"""

from etude.exchangeable.bruno import FLOWS, PROCESSES, Bruno
from etude.exchangeable.data import (
    DIGIT_LEVELS,
    DigitSplits,
    knn_predict,
    load_digit_splits,
    nearest_neighbour_predict,
    sample_episodes,
    sample_sequences,
)
from etude.exchangeable.processes import (
    ExchangeableProcess,
    GaussianProcess,
    StudentTProcess,
    gaussian_log_prob,
    student_t_log_prob,
)
from etude.exchangeable.training import TrainLog, process_grad_scale, train_bruno

__all__ = [
    "Bruno",
    "DIGIT_LEVELS",
    "DigitSplits",
    "ExchangeableProcess",
    "FLOWS",
    "GaussianProcess",
    "PROCESSES",
    "StudentTProcess",
    "TrainLog",
    "gaussian_log_prob",
    "knn_predict",
    "load_digit_splits",
    "nearest_neighbour_predict",
    "process_grad_scale",
    "sample_episodes",
    "sample_sequences",
    "student_t_log_prob",
    "train_bruno",
]
