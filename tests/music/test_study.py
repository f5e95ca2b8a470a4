"""Study transformer_ae: the CLI smoke run, the full preset at a tiny size, training resume and determinism."""

from __future__ import annotations

import json

import pytest
import torch

from etude.cli import main
from etude.errors import BadInputError
from etude.music import TransformerAutoencoder, TransformerConfig, crop, fit, make_crops, nll
from etude.music.study import TransformerAeStudy
from etude.studies.registry import get_study


CFG = TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=24, dropout=0.1)


@pytest.fixture(scope="module")
def six_pieces(tmp_path_factory):
    """A cache folder in tmp holding the first 6 chorales (the smoke preset's), parsed once for this module."""
    from etude.music import load_corpus

    folder = tmp_path_factory.mktemp("tae_cache")
    load_corpus("bach", limit=6, cache=folder, show_progress=False)
    return folder


def test_cli_smoke(tmp_path, monkeypatch, six_pieces):
    monkeypatch.setenv("ETUDE_CACHE", str(six_pieces))
    assert main(["reproduce", "transformer_ae", "--preset", "smoke", "--out", str(tmp_path / "runs")]) == 0
    folder = tmp_path / "runs" / "transformer_ae"
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert [c["id"] for c in result["claims"]] == [c.id for c in TransformerAeStudy().claims()]
    assert all(c["verdict"] in ("holds", "fails", "inconclusive") and c["measured"] for c in result["claims"])
    assert all(c["verdict"] == "inconclusive" for c in result["claims"])  # 4 steps decide nothing
    assert set(result["metrics"]["nll_nats_per_token"]) >= {"unconditional", "melody+perf tile", "unpooled"}
    for name in result["artifacts"]:
        assert (folder / name).is_file(), name
    assert any(n.endswith(".mid") for n in result["artifacts"]) and any(n.endswith(".png") for n in result["artifacts"])
    assert len(list((folder / "checkpoints").glob("*.pt"))) == 8
    # the style transfer the user can hear: conditioning, melody and generation, each with its previews
    for name in ("style", "melody", "generated"):
        midi = f"transfer/transfer_0_{name}.mid"
        assert midi in result["artifacts"] and (folder / midi.replace(".mid", ".preview.png")).is_file()
    inter = result["metrics"]["interpolation"]
    assert inter["alpha"] == [0.0, 0.5, 1.0] and len(inter["velocity"]) == len(inter["notes_per_second"]) == 3
    assert "interpolation/features.png" in result["artifacts"]
    assert result["metrics"]["style_direction"]["span_seconds"]["max"] <= 1.5


def test_registered():
    assert isinstance(get_study("transformer_ae"), TransformerAeStudy)


def test_full_preset_runs_at_a_tiny_size(tmp_path, monkeypatch, six_pieces):
    monkeypatch.setenv("ETUDE_CACHE", str(six_pieces))
    study = TransformerAeStudy()
    tiny = {"pieces": "6", "seconds": "1.5", "max_tokens": "24", "per_piece": "1", "eval_per_piece": "1", "dim": "16",
            "heads": "2", "layers": "1", "encoder_layers": "1", "ff": "16", "steps": "1", "batch_size": "2",
            "samples": "1", "seeds": "2", "direction_scores": "1", "transfer_pairs": "1", "interpolation_pairs": "1",
            "dataset": "chorales"}  # the full sizes on the chorales (MAESTRO: tests/data/test_studies.py)
    preset = study.preset("full", tiny)
    assert preset.device == "auto" and preset.dropout == 0.1 and preset.seeds == 2
    result = study.run(preset, seed=0, out_dir=tmp_path / "out")
    assert len(result.metrics["nll_per_seed"]["performance"]) == 2
    with pytest.raises(BadInputError):
        study.preset("full", {"no_such_field": "1"})


def test_too_few_pieces_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "cache"))
    study = TransformerAeStudy()
    with pytest.raises(BadInputError, match="held-out"):
        study.run(study.preset("smoke", {"pieces": "2"}), seed=0, out_dir=tmp_path)


@pytest.fixture(scope="module")
def crops(bach):
    return make_crops(bach.pieces, seconds=1.0, max_tokens=24, per_piece=3, seed=0)


def test_crops_are_windows(bach, crops):
    piece = bach.pieces[0]
    window = crop(piece.performance, 2.0, 1.5)
    assert len(window) > 0 and window.start.min() >= 0 and window.end.max() <= 1.5 + 1e-9
    assert crops.performance.shape[1] == 23 and crops.melody.shape[1] == 24
    assert len(crops) == 3 * len(bach.pieces)


def test_untrained_nll_is_near_uniform_and_training_lowers_it(crops):
    torch.manual_seed(0)
    model = TransformerAutoencoder(CFG, "none")
    before = nll(model, crops)
    assert abs(before - torch.log(torch.tensor(391.0)).item()) < 1.0
    fit(model, crops, steps=20, batch_size=8, lr=1e-2, seed=0)
    assert nll(model, crops) < before - 0.3


def test_resume_gives_the_uninterrupted_result(crops, tmp_path):
    def run(path, resume=False, stop=None):
        torch.manual_seed(0)
        model = TransformerAutoencoder(CFG, "performance", encoder_layers=1)
        data = crops
        if stop is not None:  # a data object that dies after `stop` batches, like a killed run
            class Dying(type(crops)):
                calls = 0

                def select(self, index):
                    Dying.calls += 1
                    if Dying.calls > stop:
                        raise KeyboardInterrupt
                    return super().select(index)
            data = Dying(crops.performance, crops.melody)
        losses = fit(model, data, steps=6, batch_size=4, lr=1e-3, seed=3, checkpoint=path, resume=resume, every=2)
        return losses, model

    whole, model_a = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", stop=5)
    resumed, model_b = run(tmp_path / "b.pt", resume=True)
    assert resumed == whole
    for p, q in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(p, q)
    again, _ = run(tmp_path / "c.pt")
    assert again == whole  # determinism from the seed


def test_trainings_in_two_processes_equal_one_process(tmp_path, monkeypatch, six_pieces):
    import dataclasses

    import numpy as np

    from etude.music import experiments
    from etude.music.experiments import load_data, train_models

    monkeypatch.setenv("ETUDE_CACHE", str(six_pieces))
    pools = []
    original = experiments._pretrain
    monkeypatch.setattr(experiments, "_pretrain", lambda *args: pools.append(len(args[0])) or original(*args))
    torch.set_num_threads(1)  # the study's thread count, which the workers take over
    preset = dataclasses.replace(TransformerAeStudy.presets["smoke"], steps=3, seeds=2, seed_models=("performance",))
    data = load_data(preset, 0)
    one = train_models(preset, 0, tmp_path / "one", False, None, torch.device("cpu"), data)
    two = train_models(dataclasses.replace(preset, workers=2), 0, tmp_path / "two", False, None, "cpu", data)
    assert pools == [9] and len(list((tmp_path / "two" / "checkpoints").glob("*.pt"))) == 9  # 8 models, 1 again
    assert one.per_crop.keys() == two.per_crop.keys() and len(two.per_crop["performance"]) == 2
    for name in one.per_crop:
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one.per_crop[name], two.per_crop[name]))
        assert one.curves[name] == two.curves[name]


def test_a_daemonic_worker_trains_in_its_own_process(monkeypatch):
    import multiprocessing as mp

    from etude.music import experiments

    assert experiments._may_spawn()
    monkeypatch.setattr(mp.current_process(), "daemon", True, raising=False)
    assert not experiments._may_spawn()  # `etude reproduce --jobs N` workers may not start processes
