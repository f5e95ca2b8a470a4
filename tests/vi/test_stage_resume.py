"""qmcvi resumes from its stage checkpoints only when their content fits the run.

A stage checkpoint with a valid hash but the wrong content (a string where a number belongs, a tensor
of another dtype or shape, a list of another length) is a one-line CheckpointError naming the file
and the field, instead of a crash later or a silently different result.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from etude.errors import CheckpointError
from etude.runtime import load_checkpoint, save_checkpoint
from etude.studies import get_study


def _preset():
    smoke = get_study("qmcvi").presets["smoke"]
    return dataclasses.replace(smoke, models=("linear",), convergence_models=("linear",), train_seeds=2)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("qmcvi") / "run"
    get_study("qmcvi").run(_preset(), 0, out)
    return out


def _set(value, path, new):
    *head, last = path
    for key in head:
        value = value[key]
    if isinstance(value, tuple):
        raise AssertionError("edit a list or dict")
    value[last] = new(value[last])


CASES = {
    "train mc as int64": ("train_linear", ("mc",), lambda t: t.long(), "value.mc"),
    "train mc as float32": ("train_linear", ("mc",), lambda t: t.float(), "value.mc"),
    "train steps with a string": ("train_linear", ("steps", 0), str, "value.steps[0]"),
    "train mc of another shape": ("train_linear", ("mc",), lambda t: t[:, :1], "value.mc"),
    "reference elbo as a string": ("reference_linear", ("elbo",), lambda x: "-12.5", "value.elbo"),
    "reference loc as float32": ("reference_linear", ("loc",), lambda t: t.float(), "value.loc"),
    "variance ratio shortened": ("variance_linear", ("init", "ratio"), lambda xs: xs[:1], "value.init.ratio"),
    "schedule errors as int64": ("schedule", ("errors_mc",), lambda t: t.long(), "value.errors_mc"),
    "schedule stage with a string": ("schedule", ("stage_mc", 0), str, "value.stage_mc[0]"),
}


def test_the_untouched_stages_resume_without_recomputing(finished, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    import etude.vi.experiments as experiments

    def recompute(*args, **kwargs):
        raise AssertionError("a stage was recomputed")

    monkeypatch.setattr(experiments, "compare_training", recompute)
    monkeypatch.setattr(experiments, "schedule_experiment", recompute)
    get_study("qmcvi").run(_preset(), 0, out, resume=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_stage_with_wrong_content_is_refused_in_one_line(finished, tmp_path, case):
    stage, path, change, field = CASES[case]
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    ckpt = out / "checkpoints" / f"{stage}.pt"
    state = load_checkpoint(ckpt)
    _set(state["value"], path, change)
    save_checkpoint(ckpt, state)  # a valid hash over the wrong content
    with pytest.raises(CheckpointError) as refused:
        get_study("qmcvi").run(_preset(), 0, out, resume=True)
    message = str(refused.value)
    assert "\n" not in message and str(ckpt) in message and field in message, message
