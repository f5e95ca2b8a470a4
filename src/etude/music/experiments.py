"""The steps of the transformer_ae study (Choi et al., ICML 2020, arXiv:1912.05537), in the order it runs them.

``load_data`` (held-out chorales split by piece, training and evaluation crops), ``train_models``
(every model of ``MODELS`` at every seed), ``nll_metrics`` and ``decide_nll_claims`` (Tables 1-2),
``decide_generation_claims`` (OA, style direction, pitch range, music-likeness; Secs. 5.2-5.3),
``decide_transfer`` (melody of A in the style of B, and style interpolation) and ``plot_curves``.
Each ``decide_*`` step measures, calls the pure rules of ``etude.music.criteria`` and records the
verdicts on the study's claims; the numbers go to ``metrics``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError
from etude.music.autoencoder import TransformerAutoencoder
from etude.music.corpus import load_scores, play, split_of
from etude.music.criteria import (
    MIN_PAIRS,
    better_rule,
    copy_rule,
    direction_rule,
    interval_rule,
    music_like_rule,
    nll_gain,
    range_rule,
    style_nll_rule,
    transfer_rule,
)
from etude.music.events import PerformanceEncoding
from etude.music.generations import (
    interpolation,
    oa_experiment,
    plot_first,
    style_direction,
    style_transfer,
    training_pitch_range,
)
from etude.music.likeness import figures_of_ids, music_figures
from etude.music.metrics import pitch_range_fraction
from etude.music.training import Crops, fit, make_crops, nll_per_crop
from etude.music.transformer import TransformerConfig
from etude.statistics import interval_text, paired_t_interval
from etude.studies.protocol import Claim

__all__ = [
    "MODELS",
    "Data",
    "Trained",
    "decide_generation_claims",
    "decide_nll_claims",
    "decide_transfer",
    "load_data",
    "nll_metrics",
    "plot_curves",
    "train_models",
]

# model name -> (conditioning, combine, pool, relative, absolute); every model adds sinusoidal positions
# (tensor2tensor's timing signal, kept beside relative attention by magenta's Music Transformer hparams)
MODELS = {
    "unconditional": ("none", "sum", True, True, True),
    "absolute": ("none", "sum", True, False, True),
    "performance": ("performance", "sum", True, True, True),
    "unpooled": ("performance", "sum", False, True, True),
    "melody": ("melody", "sum", True, True, True),
    "melody+perf sum": ("melody+performance", "sum", True, True, True),
    "melody+perf concat": ("melody+performance", "concat", True, True, True),
    "melody+perf tile": ("melody+performance", "tile", True, True, True),
}


@dataclass
class Data:
    """Held-out ``(score, piece)`` pairs, training and evaluation crops, and the number of training pieces."""

    held: list
    train: Crops
    eval: Crops
    train_pieces: int


@dataclass
class Trained:
    """Per-crop held-out NLLs per model and seed, seed 0's training curves and models."""

    per_crop: dict[str, list[np.ndarray]]
    curves: dict[str, list[float]]
    models: dict[str, TransformerAutoencoder]


def load_data(preset: Any, seed: int) -> Data:
    """Chorales played in sampled styles, split by piece; crops of the training and held-out pieces.

    On MAESTRO (``preset.dataset``): its performances with their skyline melodies, the official train
    split for training and its test split held out (no scores: ``held`` pairs are (None, recording)).
    """
    train: list[Any]
    held: list[tuple[Any, Any]]
    if getattr(preset, "dataset", "chorales") == "maestro":
        from etude.music.recordings import maestro_pieces

        splits = maestro_pieces(preset.data_dir, limit=preset.pieces)
        train, held = splits["train"], [(None, r) for r in splits["test"]]
    else:
        scores, _ = load_scores("bach", limit=preset.pieces or None, show_progress=False)
        pieces = [play(s, seed, split_of(s.name)) for s in scores]
        train = [p for p in pieces if p.split == "train"]
        held = [(s, p) for s, p in zip(scores, pieces) if p.split != "train"]
    if not train or not held:
        raise BadInputError(
            f"{preset.pieces} pieces give {len(train)} training and {len(held)} held-out pieces; "
            "raise the preset's 'pieces'"
        )
    crops = {"seconds": preset.seconds, "max_tokens": preset.max_tokens}
    train_data = make_crops(train, per_piece=preset.per_piece, seed=seed, augment=preset.augment, **crops)
    eval_data = make_crops([p for _, p in held], per_piece=preset.eval_per_piece, seed=seed + 1, **crops)
    return Data(held, train_data, eval_data, len(train))


def train_models(preset: Any, seed: int, out_dir: Path, resume: bool, fabric: Any, device: Any, data: Data) -> Trained:
    """Train MODELS at seed 0 and ``preset.seed_models`` (empty: all) at the later seeds; held-out NLL per crop.

    With ``preset.workers`` > 1 on the CPU (no Fabric, not inside a ``--jobs`` worker), the trainings
    first run side by side in that many spawned processes into their checkpoints (`_pretrain`), which
    the loop below then resumes from: the same models, losses and NLLs as one process, in less wall
    time on several cores.
    """
    unknown = set(preset.seed_models) - set(MODELS)
    if unknown:
        raise BadInputError(f"seed_models must name models of {sorted(MODELS)}, got {sorted(unknown)}")
    jobs = [
        (s, n)
        for s in range(preset.seeds)
        for n in MODELS
        if s == 0 or not preset.seed_models or n in preset.seed_models
    ]
    if preset.workers > 1 and fabric is None and torch.device(device).type == "cpu" and _may_spawn():
        _pretrain(jobs, preset, seed, out_dir, resume, data.train)
        resume = True
    train_data, eval_data = data.train.to(device), data.eval.to(device)  # once, for every model and seed
    out = Trained({name: [] for name in MODELS}, {}, {})
    for s, name in jobs:
        model = _model(preset, seed, s, name).to(device)
        losses = _fit(model, preset, seed, s, name, train_data, out_dir, resume, fabric)
        out.per_crop[name].append(nll_per_crop(model, eval_data))
        if s == 0:
            out.curves[name], out.models[name] = losses, model
    return out


def _may_spawn() -> bool:
    """False inside a daemonic process (an `etude reproduce --jobs N` worker), which may not start processes."""
    import multiprocessing as mp

    return not mp.current_process().daemon


def _model(preset: Any, seed: int, s: int, name: str) -> TransformerAutoencoder:
    """Model ``name`` of training seed ``s``, initialized from its own seed (the same in any process)."""
    cond, combine, pool, relative, absolute = MODELS[name]
    cfg = TransformerConfig(
        vocab_size=PerformanceEncoding().vocab_size,
        dim=preset.dim,
        heads=preset.heads,
        layers=preset.layers,
        ff=preset.ff,
        max_len=preset.max_tokens,
        dropout=preset.dropout,
        relative=relative,
        absolute=absolute,
    )
    torch.manual_seed(zlib.crc32(f"{seed}/{s}/{name}".encode()))
    return TransformerAutoencoder(cfg, cond, combine, pool, encoder_layers=preset.encoder_layers)


def _fit(
    model: TransformerAutoencoder,
    preset: Any,
    seed: int,
    s: int,
    name: str,
    data: Crops,
    out_dir: Path,
    resume: bool,
    fabric: Any = None,
) -> list[float]:
    tag = name.replace("+", "_").replace(" ", "_")
    return fit(
        model,
        data,
        steps=preset.steps,
        batch_size=preset.batch_size,
        lr=preset.lr,
        seed=seed * 1000 + s,
        checkpoint=Path(out_dir) / "checkpoints" / f"{tag}_s{s}.pt",
        resume=resume,
        desc=f"{name} seed {s}",
        fabric=fabric,
    )


def _pretrain(jobs: list[tuple[int, str]], preset: Any, seed: int, out_dir: Path, resume: bool, data: Crops) -> None:
    """Run every training of ``jobs`` to its checkpoint in ``preset.workers`` spawned processes, this process's
    torch thread count each (results equal to one process's), longest first; one bar counts finished trainings.
    What the trainings share (preset, data, ...) goes to each worker once, with its start."""
    import multiprocessing as mp

    from etude.runtime.progress import progress

    order = sorted(jobs, key=lambda job: -_COST.get(job[1], 4))
    shared = (torch.get_num_threads(), preset, seed, data, out_dir, resume)
    context = mp.get_context("spawn")  # fork is unsafe once torch's thread pools exist
    with context.Pool(min(preset.workers, len(jobs)), _start_worker, shared) as pool:
        with progress(total=len(order), desc=f"training in {preset.workers} processes") as bar:
            for _ in pool.imap_unordered(_train_one, order):
                bar.update(1)


_COST = {"unconditional": 1, "absolute": 1, "performance": 2, "unpooled": 3, "melody": 3}
"""Relative step time per model (measured at the long preset's size: melody+performance models about 0.8 s,
unconditional 0.2 s), to start the longest trainings first; models not named here count 4."""

_SHARED: tuple[Any, int, Crops, Path, bool] | None = None
"""In a `_pretrain` worker: (preset, seed, training crops, out_dir, resume), set once by `_start_worker`."""


def _start_worker(threads: int, preset: Any, seed: int, data: Crops, out_dir: Path, resume: bool) -> None:
    import os

    global _SHARED
    os.environ["ETUDE_PROGRESS"] = "0"  # one bar, in the parent
    torch.set_num_threads(threads)
    _SHARED = (preset, seed, data, out_dir, resume)


def _train_one(job: tuple[int, str]) -> None:
    assert _SHARED is not None, "_train_one runs in a worker started by _start_worker"
    preset, seed, data, out_dir, resume = _SHARED
    s, name = job
    _fit(_model(preset, seed, s, name), preset, seed, s, name, data, out_dir, resume)


def nll_metrics(trained: Trained, data: Data) -> dict[str, Any]:
    """Token-weighted held-out NLL per model (mean over seeds, and per seed), data sizes, final training loss."""
    counts = (data.eval.performance != PerformanceEncoding.PAD).sum(1).numpy()
    per_seed = {n: [float(np.sum(v * counts) / counts.sum()) for v in s] for n, s in trained.per_crop.items()}
    return {
        "nll_nats_per_token": {n: float(np.mean(v)) for n, v in per_seed.items()},
        "nll_per_seed": per_seed,
        "train_crops": len(data.train),
        "eval_crops": len(data.eval),
        "train_pieces": data.train_pieces,
        "held_out_pieces": len(data.held),
        "final_train_loss": {n: float(np.mean(c[-10:])) for n, c in trained.curves.items() if c},
    }


def decide_nll_claims(
    claims: dict[str, Claim], per_crop: dict[str, list[np.ndarray]], preset: Any, enough: bool
) -> dict[str, object]:
    """style_lowers_nll, melody_plus_performance, unpooled_copies and relative_beats_absolute."""
    out: dict[str, object] = {}
    gain = nll_gain(per_crop["unconditional"], per_crop["performance"])
    holds, conclusive = style_nll_rule(gain, enough)
    out["style_lowers_nll"] = gain
    claims["style_lowers_nll"].decide(
        f"NLL gap unconditional - performance {interval_text(gain)} nats/token over {gain['n']} crops, "
        f"{len(gain['seed_gaps'])} seed(s) (per seed {', '.join(f'{g:+.3f}' for g in gain['seed_gaps'])})",
        holds,
        conclusive=conclusive,
    )
    combos = {c: nll_gain(per_crop["melody"], per_crop[f"melody+perf {c}"]) for c in ("sum", "concat", "tile")}
    rules = {c: better_rule(g, enough) for c, g in combos.items()}
    out["melody_plus_performance"] = combos
    claims["melody_plus_performance"].decide(
        "NLL gap melody-only - combination: "
        + "; ".join(f"{c} {interval_text(g)}" for c, g in combos.items())
        + f" nats/token ({len(combos['sum']['seed_gaps'])} seed(s))",
        all(h for h, _ in rules.values()),
        conclusive=all(c for _, c in rules.values()) or any(c and not h for h, c in rules.values()),
        note="best combination: " + max(combos, key=lambda c: combos[c]["mean"]),
    )
    seeds = min(len(per_crop["performance"]), len(per_crop["unpooled"]))
    pooled, unpooled = (float(np.mean(per_crop[n][:seeds])) for n in ("performance", "unpooled"))
    holds, conclusive = copy_rule(unpooled, pooled, enough and preset.decide_copying)
    out["unpooled_ratio"] = unpooled / pooled
    claims["unpooled_copies"].decide(
        f"unpooled {unpooled:.3f} vs pooled {pooled:.3f} nats/token (mean over crops and {seeds} seed(s); "
        f"ratio {unpooled / pooled:.2f})",
        holds,
        conclusive=conclusive,
    )
    gain = nll_gain(per_crop["absolute"], per_crop["unconditional"])
    holds, conclusive = better_rule(gain, enough)
    out["relative_beats_absolute"] = gain
    claims["relative_beats_absolute"].decide(
        f"NLL gap absolute - relative {interval_text(gain)} nats/token over {gain['n']} crops, "
        f"{len(gain['seed_gaps'])} seed(s)",
        holds,
        conclusive=conclusive,
    )
    return out


def decide_generation_claims(
    claims: dict[str, Claim], metrics: dict, trained: Trained, data: Data, preset: Any, seed: int, out_dir: Path,
    device: Any, enough: bool,
) -> list[str]:  # fmt: skip
    """oa_conditioned, style_direction, pitch_in_range and music_like_data; returns the artifacts written."""
    models, held = trained.models, data.held
    oa = oa_experiment(models, held, preset, seed, out_dir, device)
    artifacts = oa["artifacts"] + plot_first(
        {k: v[0] for k, v in oa["generated"].items()}, out_dir, f"held-out {held[0][0].name}"
    )
    _decide_oa(claims, metrics, oa, preset, enough)
    sd = style_direction(models["performance"], held, preset, seed, out_dir, device, scores=preset.direction_scores)
    artifacts += sd["artifacts"]
    _decide_style_direction(claims, metrics, sd, len(held), preset, enough)
    _decide_pitch_range(claims, metrics, data, oa, sd, enough)
    _decide_music_like(claims, metrics, data, oa, sd, enough)
    return artifacts


def _decide_oa(claims: dict[str, Claim], metrics: dict, oa: dict, preset: Any, enough: bool) -> None:
    """oa_conditioned: the paired OA difference, performance-conditioned minus unconditioned, is above 0."""
    diff = paired_t_interval(np.subtract(oa["oa"]["performance"], oa["oa"]["unconditional"]))
    holds, conclusive = interval_rule(diff, min_n=MIN_PAIRS)
    metrics["oa"] = {**{k: float(np.mean(v)) for k, v in oa["oa"].items()}, "difference": diff}
    claims["oa_conditioned"].decide(
        f"OA conditioned {metrics['oa']['performance']:.3f} vs unconditioned {metrics['oa']['unconditional']:.3f}, "
        f"paired difference {interval_text(diff)}; ceiling {metrics['oa']['ceiling']:.3f} "
        f"(over {diff['n']} held-out crops)",
        holds,
        conclusive=enough and conclusive,
        note=f"OA over {oa['window']['window']:g} s windows (hop {oa['window']['hop']:g} s) "
        f"of {preset.seconds:g} s crops",
    )


def _decide_style_direction(
    claims: dict[str, Claim], metrics: dict, sd: dict, held: int, preset: Any, enough: bool
) -> None:
    """style_direction: loud/fast styles give louder, denser generations than soft/slow ones (paired)."""
    dv = paired_t_interval(np.subtract(sd["velocity"]["loud_fast"], sd["velocity"]["soft_slow"]))
    dd = paired_t_interval(np.subtract(sd["density"]["loud_fast"], sd["density"]["soft_slow"]))
    holds, conclusive = direction_rule(dv, dd)
    metrics["style_direction"] = {
        "velocity": {k: float(np.nanmean(v)) for k, v in sd["velocity"].items()},
        "notes_per_second": {k: float(np.nanmean(v)) for k, v in sd["density"].items()},
        "velocity_difference": dv,
        "notes_per_second_difference": dd,
        "span_seconds": {"min": float(np.min(sd["span_seconds"])), "max": float(np.max(sd["span_seconds"]))},
        "distinct_scores": min(preset.direction_scores, held),
    }
    claims["style_direction"].decide(
        f"loud/fast - soft/slow: velocity {interval_text(dv)}, notes/s {interval_text(dd)} over {dv['n']} "
        f"held-out scores ({metrics['style_direction']['distinct_scores']} distinct; spans "
        f"{np.min(sd['span_seconds']):.1f}-{np.max(sd['span_seconds']):.1f} s, equal per pair)",
        holds,
        conclusive=enough and conclusive,
    )


def _decide_pitch_range(claims: dict[str, Claim], metrics: dict, data: Data, oa: dict, sd: dict, enough: bool) -> None:
    """pitch_in_range: the generated notes stay inside the training data's pitch range."""
    low, high = training_pitch_range(data.train)
    generated = oa["generated"]["performance"] + sd["generated"]
    fraction = pitch_range_fraction(generated, low, high)
    notes = sum(len(p) for p in generated)
    holds, conclusive = range_rule(fraction, notes)
    metrics["pitch_in_range"] = {
        "training_range": [low, high],
        "fraction": fraction,
        "notes": notes,
        "unconditional_fraction": pitch_range_fraction(oa["generated"]["unconditional"], low, high),
    }
    claims["pitch_in_range"].decide(
        f"{fraction:.1%} of {notes} generated notes in the training range {low}..{high} "
        f"(unconditional: {metrics['pitch_in_range']['unconditional_fraction']:.1%})",
        holds,
        conclusive=enough and conclusive,
    )


def _decide_music_like(claims: dict[str, Claim], metrics: dict, data: Data, oa: dict, sd: dict, enough: bool) -> None:
    """music_like_data: the performance model's texture figures are within the held-out crops' (music_like_rule)."""
    figures = {"held_out": figures_of_ids(data.eval.performance)}  # decoded as the generations are
    for name in ("performance", "unconditional"):
        figures[name] = music_figures(oa["generated"][name], oa["ids"][name])
    figures["style_direction"] = music_figures(sd["generated"], sd["ids"])
    rule = music_like_rule(figures["performance"], figures["held_out"])
    metrics["music_likeness"] = {"figures": figures, "performance_checks": rule["checks"]}
    claims["music_like_data"].decide(
        "performance model vs held-out crops: "
        + ", ".join(
            f"{k} {c['generated']:.3g}"
            + ("" if k in ("velocity_histogram", "orphan_note_offs") else f"/{c['data']:.3g}")
            + ("" if c["ok"] else " (out)")
            for k, c in rule["checks"].items()
        )
        + f" ({figures['performance']['notes']} and {figures['held_out']['notes']} notes)",
        rule["holds"],
        conclusive=enough and rule["conclusive"],
        note="generated/data; velocity_histogram is the total-variation distance, orphan_note_offs a share",
    )


def decide_transfer(
    claims: dict[str, Claim], metrics: dict, trained: Trained, data: Data, preset: Any, seed: int, out_dir: Path,
    device: Any, enough: bool,
) -> list[str]:  # fmt: skip
    """style_transfer (the best melody+performance combination) and the style interpolation; returns artifacts."""
    best = min(("sum", "concat", "tile"), key=lambda c: metrics["nll_nats_per_token"][f"melody+perf {c}"])
    model = trained.models[f"melody+perf {best}"]
    transfer = style_transfer(model, data.held, preset, seed, out_dir, device, pairs=preset.transfer_pairs)
    inter = interpolation(model, data.held, preset, seed, out_dir, device, pairs=preset.interpolation_pairs)
    rows = transfer["pairs"]
    side = {
        who: {f: [r[f][who] for r in rows] for f in ("velocity", "notes_per_second")} for who in ("A", "B", "generated")
    }
    rule = transfer_rule(side["generated"], side["A"], side["B"])
    metrics["style_transfer"] = {
        "model": f"melody+perf {best}",
        "pairs": rows,
        "closer_to_b": {f: rule[f] for f in ("velocity", "notes_per_second")},
        "figures": music_figures(transfer["generated"], transfer["ids"]),
    }
    claims["style_transfer"].decide(
        f"|gen - A| - |gen - B| over {len(rows)} held-out pairs: velocity {interval_text(rule['velocity'])}, "
        f"notes/s {interval_text(rule['notes_per_second'])} (> 0: closer to the style's piece B)",
        rule["holds"],
        conclusive=enough and rule["conclusive"] and len(rows) >= MIN_PAIRS,
        note=f"model melody+perf {best}",
    )
    metrics["interpolation"] = {
        "model": f"melody+perf {best}",
        "alpha": inter["alpha"],
        "velocity": inter["velocity"],
        "notes_per_second": inter["notes_per_second"],
        "per_pair": inter["per_pair"],
    }
    return transfer["artifacts"] + inter["artifacts"]


def plot_curves(curves: dict[str, list[float]], path: Path) -> str:
    """Training loss per model (seed 0) as a PNG; returns its file name."""
    from etude.runtime.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in curves.items():
        ax.plot(c, label=name, lw=1)
    ax.set(xlabel="step", ylabel="training NLL (nats/token)", title="transformer_ae: training loss, seed 0")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)
    return path.name
