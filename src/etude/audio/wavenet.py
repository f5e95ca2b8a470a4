"""WaveNet (van den Oord et al. 2016, arXiv:1609.03499) with local conditioning and cached generation.

Used as decoder and prior of the autoregressive discrete autoencoders of Dieleman, van den Oord,
Simonyan, "The challenge of realistic music generation", NeurIPS 2018 (arXiv:1806.10474), Sec. 3.
Fast generation follows Paine et al. 2016 (arXiv:1611.09482): a queue per layer holding the last
`dilation` inputs, so one step costs O(layers) instead of O(receptive field). `generate` runs every
step in one compiled call when numba is installed (`etude.audio.compiled`), else a torch loop.

Convention: ``logits[:, :, t]`` is p(x_{t+1} | x_{<=t}, codes); the training target is ``x[:, 1:]``.
Code j covers samples [j hop, (j+1) hop); the output at t (which predicts x_{t+1}) sees the code of
the block holding x_{t+1}.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from etude.audio import compiled
from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["WaveNet", "receptive_field", "upsample_codes"]


def receptive_field(dilations: list[int] | tuple[int, ...], kernel_size: int = 2) -> int:
    """Samples seen by one output: 1 + sum_l (kernel_size - 1) d_l."""
    return 1 + sum((kernel_size - 1) * d for d in dilations)


def upsample_codes(cond: torch.Tensor, hop: int, length: int) -> torch.Tensor:
    """Repeat code-rate features to the sample rate, aligned with the predicted sample.

    :param cond: [B, C, Tc] features at the code rate.
    :returns: [B, C, length] where position t holds cond[..., (t + 1) // hop] (clamped to Tc - 1).
    """
    index = torch.clamp((torch.arange(length, device=cond.device) + 1) // hop, max=cond.shape[-1] - 1)
    return cond.index_select(-1, index)


def _convs(layers: nn.ModuleList) -> list[nn.Conv1d]:
    """The convolutions of a ModuleList as what they are (iterating a ModuleList yields ``nn.Module``)."""
    return cast("list[nn.Conv1d]", list(layers))


class WaveNet(nn.Module):
    """Dilated causal convolutions with gated units, residual and skip connections, 256-way softmax.

    Layer l: z = tanh(W_f * h + V_f c) . sigmoid(W_g * h + V_g c)   (Eq. 2-3 of WaveNet, local conditioning)
             h <- h + W_r z,  skip += W_s z.
    Output: logits = W_2 relu(W_1 relu(sum skip)).

    :param classes: input and output alphabet size (256 mu-law classes, or K codes for a prior).
    :param residual: channels R of the residual stream.
    :param skip: channels of the skip stream.
    :param layers: layers per stack; dilations 1, 2, ..., 2^(layers-1).
    :param stacks: repetitions of the dilation cycle.
    :param cond_channels: channels C of the code-rate conditioning (0: unconditional).
    :param hop: samples per conditioning step.
    :param scalar_input: also feed the class as an ordered value y = 2 x / (classes - 1) - 1 (the
        mu-law amplitude), so neighbouring classes start with neighbouring inputs; for audio, not codes.
    """

    first_logits: torch.Tensor  # buffer (registered in __init__)

    def __init__(
        self,
        classes: int = 256,
        residual: int = 32,
        skip: int = 64,
        layers: int = 8,
        stacks: int = 1,
        cond_channels: int = 0,
        hop: int = 1,
        scalar_input: bool = False,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("classes", classes, 2),
            ("residual", residual, 1),
            ("skip", skip, 1),
            ("layers", layers, 1),
            ("stacks", stacks, 1),
            ("cond_channels", cond_channels, 0),
            ("hop", hop, 1),
        ):
            check_int(name, value, low)
        self.classes, self.residual, self.cond_channels, self.hop = classes, residual, cond_channels, hop
        self.dilations = [2**i for i in range(layers)] * stacks
        self.embed = nn.Embedding(classes, residual)  # one-hot x_t -> R channels (a 1x1 conv on one-hot)
        self.scalar_input = scalar_input
        self.scalar = nn.Parameter(torch.randn(residual)) if scalar_input else None  # 1x1 conv on y_t
        self.dilated = nn.ModuleList(nn.Conv1d(residual, 2 * residual, 2, dilation=d) for d in self.dilations)
        self.res = nn.ModuleList(nn.Conv1d(residual, residual, 1) for _ in self.dilations)
        # the last layer's residual output feeds nothing, so no gradient reaches its 1x1 conv: frozen, as DDP
        # needs every trainable parameter to receive one
        self.res[-1].requires_grad_(False)
        self.skips = nn.ModuleList(nn.Conv1d(residual, skip, 1) for _ in self.dilations)
        # V_f, V_g of every layer in one 1x1 conv applied at the code rate, then repeated.
        self.cond = nn.Conv1d(cond_channels, 2 * residual * len(self.dilations), 1) if cond_channels else None
        self.out1 = nn.Conv1d(skip, skip, 1)
        self.out2 = nn.Conv1d(skip, classes, 1)
        # log p(x_0): the first symbol has no past; `fit_first` sets it to the training marginal
        self.register_buffer("first_logits", torch.zeros(classes))

    def input_table(self) -> torch.Tensor:
        """[classes, R] input features per class: embedding row (+ y_c w for scalar input)."""
        if self.scalar is None:
            return self.embed.weight
        y = torch.linspace(-1, 1, self.classes, dtype=self.embed.weight.dtype, device=self.embed.weight.device)
        return self.embed.weight + y.unsqueeze(1) * self.scalar

    @torch.no_grad()
    def fit_first(self, pieces: list[torch.Tensor]) -> None:
        """Set log p(x_0) to the add-one-smoothed marginal of the symbols in `pieces` (a first symbol has no past)."""
        counts = torch.ones(self.classes, dtype=torch.float64)
        for piece in pieces:
            counts += torch.bincount(piece.reshape(-1).long().cpu(), minlength=self.classes)[: self.classes].double()
        self.first_logits.copy_((counts / counts.sum()).log().to(self.first_logits))

    @property
    def receptive_field(self) -> int:
        """Samples x_{t-rf+1..t} that logits[:, :, t] depends on."""
        return receptive_field(self.dilations)

    def _check(self, x: torch.Tensor, cond: torch.Tensor | None) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.is_floating_point():
            raise BadInputError(
                f"x must be an integer tensor [batch, time], got {getattr(x, 'shape', type(x).__name__)}"
            )
        if x.numel() and (x.min() < 0 or x.max() >= self.classes):
            raise BadInputError(f"x must lie in [0, {self.classes}), found [{x.min().item()}, {x.max().item()}]")
        if (cond is None) != (self.cond is None):
            raise BadInputError(
                "this WaveNet is "
                + ("conditional: pass cond [B, C, T/hop]" if self.cond is not None else "unconditional: pass cond=None")
            )
        if cond is not None:
            need = -(-x.shape[1] // self.hop) if x.shape[1] else 0
            if (
                cond.dim() != 3
                or cond.shape[0] != x.shape[0]
                or cond.shape[1] != self.cond_channels
                or cond.shape[2] < need
            ):
                raise BadInputError(
                    f"cond expected [{x.shape[0]}, {self.cond_channels}, >= {need}], found {list(cond.shape)}"
                )

    def _cond_per_layer(self, cond: torch.Tensor | None, length: int) -> list[torch.Tensor | None]:
        if cond is None or self.cond is None:
            return [None] * len(self.dilations)
        projected = upsample_codes(self.cond(cond), self.hop, length)  # project at code rate, then repeat
        return list(projected.chunk(len(self.dilations), dim=1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits.

        :param x: [B, T] integer classes.
        :param cond: [B, C, ceil(T / hop)] conditioning at the code rate, or None.
        :returns: [B, classes, T]; column t is the distribution of x_{t+1}.
        """
        self._check(x, cond)
        length = x.shape[1]
        h = self.embed(x)  # [B, T, R]; channels last: each 1x1 or kernel-2 conv is one or two matmuls
        if self.scalar is not None:  # + y_t w: the same rows as input_table()
            h = h + (x.to(h.dtype) * (2 / (self.classes - 1)) - 1).unsqueeze(-1) * self.scalar
        conds = [None if c is None else c.transpose(1, 2) for c in self._cond_per_layer(cond, length)]
        skip = torch.zeros((), dtype=h.dtype, device=h.device)
        for d, conv, res, sk, c in zip(
            self.dilations, _convs(self.dilated), _convs(self.res), _convs(self.skips), conds
        ):
            past = F.pad(h, (0, 0, d, 0))[:, :length]  # h_{t-d}, zeros before the start: causal
            a = F.linear(past, conv.weight[:, :, 0]) + F.linear(h, conv.weight[:, :, 1], conv.bias)
            if c is not None:
                a = a + c
            f, g = a.chunk(2, dim=-1)
            z = torch.tanh(f) * torch.sigmoid(g)
            h = h + F.linear(z, res.weight[:, :, 0], res.bias)
            skip = skip + F.linear(z, sk.weight[:, :, 0], sk.bias)
        hidden = F.relu(F.linear(F.relu(skip), self.out1.weight[:, :, 0], self.out1.bias))
        return F.linear(hidden, self.out2.weight[:, :, 0], self.out2.bias).transpose(1, 2)

    def nll_bits(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood of x_{1:} in bits per sample (a scalar tensor)."""
        logits = self(x, cond)[:, :, :-1]
        return F.cross_entropy(logits, x[:, 1:]) / torch.log(torch.tensor(2.0))

    # ----- cached generation: one queue of length d per layer, one fused step -----
    @torch.no_grad()
    def _fused_weights(self) -> dict:
        """Weights laid out for the fused step (computed once per generation call).

        tap_l [2R + 1, 2R]: [h_{t-d}, h_t, 1] @ tap_l = W_0 h_{t-d} + W_1 h_t + b (the two conv taps and bias);
        the gate rows are halved so that one tanh serves both halves, sigmoid(a) = (tanh(a / 2) + 1) / 2, and
        z' = tanh(f) (tanh(g / 2) + 1) = 2 z; res_l [R + 1, R] and skip [L (R + 1), S] take z' (with a 1
        for the bias) and are halved to match. The skip sum of every layer is one matmul at the end.
        """
        r = self.residual
        taps, res, skips = [], [], []
        for conv, rc, sc in zip(_convs(self.dilated), _convs(self.res), _convs(self.skips)):
            assert conv.bias is not None and rc.bias is not None and sc.bias is not None  # built with bias=True
            tap = torch.cat([conv.weight[:, :, 0].t(), conv.weight[:, :, 1].t(), conv.bias[None]], 0).clone()
            tap[:, r:] *= 0.5
            taps.append(tap.contiguous())
            res.append(torch.cat([0.5 * rc.weight[:, :, 0].t(), rc.bias[None]], 0).contiguous())
            skips.append(torch.cat([0.5 * sc.weight[:, :, 0].t(), sc.bias[None]], 0))
        return {
            "taps": taps,
            "res": res,
            "skip": torch.cat(skips, 0).contiguous(),
            "out1": self.out1.weight[:, :, 0].t().contiguous(),
            "b1": self.out1.bias,
            "out2": self.out2.weight[:, :, 0].t().contiguous(),
            "b2": self.out2.bias,
        }

    @torch.no_grad()
    def _steps(
        self, first: torch.Tensor, length: int, cond: torch.Tensor | None, feed, keep: bool = True
    ) -> torch.Tensor | None:
        """Run `length` cached steps from x_0 = first; feed(t, logits) returns x_{t+1}. Returns logits [B, classes, length].

        Per step and layer five kernels on preallocated buffers (cat, addmm, tanh, addcmul, addmm); the
        conditioning is projected once at the code rate and indexed per block of `hop` steps.
        """
        if self.training:
            raise BadInputError("cached generation needs eval mode: call model.eval() first")
        batch, r, layers = first.shape[0], self.residual, len(self.dilations)
        dtype, device = self.embed.weight.dtype, first.device
        w = self._fused_weights()
        new = lambda *shape: torch.zeros(*shape, dtype=dtype, device=device)  # noqa: E731
        zero = new(batch, r)
        queues = [[zero] * d for d in self.dilations]  # queue l holds h_{t-d_l} .. h_{t-1} of layer l's input
        one = torch.ones(batch, 1, dtype=dtype, device=device)
        xin = [new(batch, 2 * r + 1) for _ in self.dilations]  # [h_{t-d}, h_t, 1] per layer
        act = [new(batch, 2 * r) for _ in self.dilations]
        gates = [(a[:, :r], a[:, r:]) for a in act]
        zbuf = torch.ones(batch, layers, r + 1, dtype=dtype, device=device)  # z' of every layer, then a 1
        zs = [zbuf[:, i, :r] for i in range(layers)]
        zfull = [zbuf[:, i] for i in range(layers)]
        zflat = zbuf.view(batch, layers * (r + 1))
        blocks = None
        if (
            cond is not None and self.cond is not None
        ):  # [Tc, L, B, 2R]: every layer's conditioning projection at the code rate
            proj = self.cond(cond).view(batch, layers, 2 * r, -1).permute(3, 1, 0, 2).clone()
            proj[..., r:] *= 0.5
            blocks = proj
        table = self.input_table()
        out = torch.empty(batch, self.classes, length, dtype=dtype, device=device) if keep else None
        taps, res = w["taps"], w["res"]
        current, block, cl = first, -1, None
        for t in range(length):
            h = table.index_select(0, current)  # [B, R]
            if blocks is not None and (t + 1) // self.hop != block:
                block = min((t + 1) // self.hop, blocks.shape[0] - 1)
                cl = blocks[block].unbind(0)
            for i, d in enumerate(self.dilations):
                queue = queues[i]
                past, queue[t % d] = queue[t % d], h  # h_{t-d} (zero before the start, as the padding)
                torch.cat((past, h, one), 1, out=xin[i])
                a = act[i]
                if cl is None:
                    torch.mm(xin[i], taps[i], out=a)
                else:
                    torch.addmm(cl[i], xin[i], taps[i], out=a)
                a.tanh_()
                f, g = gates[i]
                torch.addcmul(f, f, g, out=zs[i])  # 2 z = tanh(f) (1 + tanh(g / 2))
                h = torch.addmm(h, zfull[i], res[i])
            skip = torch.mm(zflat, w["skip"]).relu_()
            logits = torch.addmm(w["b2"], torch.addmm(w["b1"], skip, w["out1"]).relu_(), w["out2"])
            if out is not None:  # keep
                out[:, :, t] = logits
            current = feed(t, logits)
        return out

    # ----- the compiled loop (etude.audio.compiled): one call for every step -----
    def compiles(self) -> bool:
        """True when generation can run the compiled loop: numba installed, float32 weights on the CPU."""
        weight = self.embed.weight
        return compiled.available() and weight.dtype == torch.float32 and weight.device.type == "cpu"

    @torch.no_grad()
    def compiled_weights(self) -> dict[str, np.ndarray]:
        """Float32 numpy weights laid out [in, out] for `etude.audio.compiled` (computed once per call).

        w_in [L, 2R, 2R]: rows 0..R-1 take h_{t-d}, rows R..2R-1 take h_t; b_skip is the sum of every
        layer's skip bias; offsets place each layer's queue of d_l slots in one flat ring buffer.
        """

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())

        convs, res, skips = _convs(self.dilated), _convs(self.res), _convs(self.skips)
        w_in = torch.stack([torch.cat([c.weight[:, :, 0].t(), c.weight[:, :, 1].t()], 0) for c in convs])
        dilations = np.asarray(self.dilations, dtype=np.int64)
        return {
            "table": arr(self.input_table()),
            "w_in": arr(w_in),
            "b_in": arr(torch.stack([cast(torch.Tensor, c.bias) for c in convs])),
            "w_res": arr(torch.stack([c.weight[:, :, 0].t() for c in res])),
            "b_res": arr(torch.stack([cast(torch.Tensor, c.bias) for c in res])),
            "w_skip": arr(torch.stack([c.weight[:, :, 0].t() for c in skips])),
            "b_skip": arr(torch.stack([cast(torch.Tensor, c.bias) for c in skips]).sum(0)),
            "w1": arr(self.out1.weight[:, :, 0].t()),
            "b1": arr(cast(torch.Tensor, self.out1.bias)),
            "w2": arr(self.out2.weight[:, :, 0].t()),
            "b2": arr(cast(torch.Tensor, self.out2.bias)),
            "dilations": dilations,
            "offsets": np.concatenate([[0], np.cumsum(dilations)[:-1]]).astype(np.int64),
        }

    @torch.no_grad()
    def _compiled_state(self, x: np.ndarray, cond: torch.Tensor | None) -> dict[str, Any]:
        """Ring buffer (zeros: the causal padding), conditioning [B, Tc, L, 2R] projected at the code rate, x."""
        batch, layers, r = x.shape[0], len(self.dilations), self.residual
        if cond is not None and self.cond is not None:
            proj = self.cond(cond.to(self.embed.weight)).view(batch, layers, 2 * r, -1).permute(0, 3, 1, 2)
            blocks = np.ascontiguousarray(proj.to(torch.float32).cpu().numpy())
        else:
            blocks = np.zeros((batch, 0, layers, 2 * r), dtype=np.float32)
        ring = np.zeros((batch, sum(self.dilations), r), dtype=np.float32)
        return {"ring": ring, "cond": blocks, "hop": self.hop, "x": x}

    def compiled_logits(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits [B, classes, T] through the compiled loop; equals `forward` (eval mode)."""
        self._check(x, cond)
        if not self.compiles():
            raise BadInputError("the compiled loop needs numba and float32 weights on the CPU")
        xs = np.ascontiguousarray(x.detach().cpu().numpy().astype(np.int64))
        out = np.zeros((x.shape[0], x.shape[1], self.classes), dtype=np.float32)
        compiled.run_steps(self.compiled_weights(), self._compiled_state(xs, cond), 0, x.shape[1], logits_out=out)
        return torch.from_numpy(out).transpose(1, 2)

    def cached_logits(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits computed step by step through the queues; equals `forward` (eval mode)."""
        self._check(x, cond)
        logits = self._steps(x[:, 0], x.shape[1], cond, lambda t, logits: x[:, min(t + 1, x.shape[1] - 1)])
        assert logits is not None  # keep=True
        return logits

    def generate(
        self,
        length: int,
        cond: torch.Tensor | None = None,
        *,
        batch: int = 1,
        first: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        naive: bool = False,
        backend: str = "auto",
    ) -> torch.Tensor:
        """Ancestral sampling of [B, length] classes; x_0 is `first`, or drawn from p(x_0) (`first_logits`).

        :param naive: recompute the full forward over the last receptive field each step (slow; for benchmarks).
        :param backend: 'compiled' (one numba call per 1024 steps, `etude.audio.compiled`), 'torch' (the
            cached torch loop) or 'auto' (compiled when `compiles()`, else torch with a one-line notice).
            Both draw the same noise, so they give the same samples.
        """
        if backend not in ("auto", "compiled", "torch"):
            raise BadInputError(f"backend must be 'auto', 'compiled' or 'torch', got {backend!r}")
        check_int("length", length, 1)
        if not temperature > 0:
            raise BadInputError(f"temperature must be > 0, got {temperature!r}")
        x = torch.zeros(batch, length, dtype=torch.long, device=self.embed.weight.device)
        if cond is not None:
            self._check(x, cond)

        noise = _Uniforms(batch, generator)

        def draw(logits: torch.Tensor, t: int) -> torch.Tensor:
            return self._draw(logits, noise(t), temperature)

        x[:, 0] = draw(self.first_logits.expand(batch, -1), 0) if first is None else first
        if naive:
            self._generate_naive(x, cond, draw)
            return x

        def feed(t: int, logits: torch.Tensor) -> torch.Tensor:
            if t + 1 < length:
                x[:, t + 1] = draw(logits, t + 1)
            return x[:, min(t + 1, length - 1)]

        if not self._use_compiled(backend):
            self._steps(x[:, 0], length - 1 if length > 1 else 1, cond, feed, keep=False)
            return x
        self._generate_compiled(x, cond, noise, temperature)
        return x

    def _draw(self, logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
        """x ~ softmax(logits / T) by the inverse CDF at the uniforms ``u`` [B] (drawn ahead in chunks), in float64:
        the number of classes whose cumulative mass c_i = sum_{j<=i} exp(l_j / T - max l / T) is < u c_K."""
        z = logits.detach().double().cpu()
        z = z if temperature == 1.0 else z / temperature
        cum = torch.exp(z - z.max(-1, keepdim=True).values).cumsum(-1)
        target = u * cum[:, -1]
        index = (cum < target[:, None]).sum(-1).clamp(max=self.classes - 1)
        return index.to(logits.device)

    @torch.no_grad()
    def _generate_naive(self, x: torch.Tensor, cond: torch.Tensor | None, draw) -> None:
        """Fill x[:, 1:] recomputing the full forward over the last receptive field (code-block aligned) each step."""
        rf = self.receptive_field
        for t in range(x.shape[1] - 1):
            lo = max(0, t + 1 - rf)
            lo -= lo % self.hop  # keep the window aligned with code blocks
            c = None if cond is None else cond[:, :, lo // self.hop :]
            x[:, t + 1] = draw(self(x[:, lo : t + 1], c)[:, :, -1], t + 1)

    def _use_compiled(self, backend: str) -> bool:
        """Whether ``backend`` runs the numba loop; 'compiled' without it is an error, 'auto' without numba a notice."""
        use_compiled = backend == "compiled" or (backend == "auto" and self.compiles())
        if backend == "compiled" and not self.compiles():
            raise BadInputError("backend 'compiled' needs numba and float32 weights on the CPU")
        if backend == "auto" and not use_compiled and not compiled.available():
            compiled.notice_once()
        return use_compiled

    def _generate_compiled(
        self, x: torch.Tensor, cond: torch.Tensor | None, noise: _Uniforms, temperature: float
    ) -> None:
        """Fill x[:, 1:] (CPU, int64; x[:, 0] set) by the compiled loop, one call per chunk of pre-drawn uniforms."""
        if self.training:
            raise BadInputError("cached generation needs eval mode: call model.eval() first")
        length = x.shape[1]
        xs = x.numpy()  # shares memory with x (CPU, int64)
        weights, state = self.compiled_weights(), self._compiled_state(xs, cond)
        for start in range(0, length, noise.chunk):  # x_{t+1} takes noise row t + 1: rows [start, start + chunk)
            noise(start)
            assert noise.values is not None
            rows = np.ascontiguousarray(noise.values.numpy())
            first_step, stop = max(start - 1, 0), min(start + noise.chunk - 1, length - 1)
            if first_step < stop:
                compiled.run_steps(
                    weights,
                    state,
                    first_step,
                    stop,
                    noise=rows,
                    noise_start=start,
                    temperature=temperature,
                    sample=True,
                )


class _Uniforms:
    """Uniforms u_t in [0, 1) [B] for step t, drawn in float64 on the CPU from `generator` in chunks of 1024
    steps (so samples do not depend on the device)."""

    def __init__(self, batch: int, generator: torch.Generator | None, chunk: int = 1024) -> None:
        self.batch, self.generator, self.chunk = batch, generator, chunk
        self.start: int | None = None
        self.values: torch.Tensor | None = None

    def __call__(self, t: int) -> torch.Tensor:
        if self.start is None or self.values is None or not self.start <= t < self.start + self.chunk:
            self.start = t - t % self.chunk
            on = self.generator.device if self.generator is not None else torch.device("cpu")
            u = torch.rand(self.chunk, self.batch, generator=self.generator, dtype=torch.float64, device=on)
            self.values = u.cpu()
        return self.values[t - self.start]
