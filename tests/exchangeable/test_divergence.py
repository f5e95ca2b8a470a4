"""A BRUNO run that diverges ends with one line naming the divergence, not a later statistic's complaint.

`etude reproduce bruno --set lr=1 --set weight_decay=10` ended with "xs contains NaN or infinite values"
(the process refusing the flow's NaN output); AdamW's decoupled decay multiplies the flow's weights
by 1 - lr * weight_decay = -9 each step, so the run diverges within two steps.
"""

import pytest
import torch

from etude.cli import main
from etude.errors import BadInputError
from etude.exchangeable import Bruno, sample_sequences, train_bruno


def _setup():
    torch.manual_seed(0)
    model = Bruno.build((1, 8, 8), 17, flow="realnvp", hidden=2, blocks=0)
    data = torch.randint(0, 17, (40, 1, 8, 8)).float()
    labels = torch.arange(40) % 2
    return model, lambda g: sample_sequences(data, labels, 2, 5, g)[0]


def test_a_diverging_run_names_the_divergence():
    model, batches = _setup()
    with pytest.raises(BadInputError, match=r"^div: training diverged \(.* at step \d+\); lower the learning rate$"):
        train_bruno(model, batches, 12, lr=1.0, weight_decay=10.0, warmup=0, desc="div")


def test_non_finite_parameters_are_named_as_divergence():
    """The process's input check would fire first (its message named `xs`); with NaN weights it is a divergence."""
    model, batches = _setup()
    with torch.no_grad():
        next(model.flow.parameters()).fill_(float("nan"))
    with pytest.raises(BadInputError, match=r"training diverged \(non-finite parameters at step 0\)"):
        train_bruno(model, batches, 3, lr=1e-3, desc="nan")


def test_a_finite_model_keeps_the_process_input_message(monkeypatch):
    """Only a non-finite model turns a refusal into 'diverged'; the process's own refusals stay as they are."""
    model, _ = _setup()
    bad = torch.full((2, 5, 1, 8, 8), 3.0)
    bad[0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(BadInputError) as refused:
        train_bruno(model, lambda g: bad, 1, lr=1e-3, desc="x")
    assert "diverged" not in str(refused.value)


def test_the_cli_reports_the_divergence_in_one_line(tmp_path, capsys):
    status = main(["reproduce", "bruno", "--preset", "smoke", "--set", "lr=1", "--set", "weight_decay=10",
                   "--set", "steps=4", "--set", "baseline_steps=4", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith("etude: error: bruno ") and "training diverged (loss" in err[-1], err
    assert "lower the learning rate" in err[-1] and "Traceback" not in "\n".join(err)
