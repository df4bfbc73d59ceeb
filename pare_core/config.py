"""Trial configuration: nested dataclasses with the papers' defaults, flat dotted keys for sweeps.

Every constant the official PaRe/ORCA code hard-codes is a key here, with the paper's value as the
default (docs/methods.md lists them with file:line in BIT-DA/PaRe and sjunhongshen/ORCA). Ray Tune sweeps flat keys (``gate.threshold``) and
result tables show them as columns, so ``from_flat``/``to_flat`` are the sweep-facing API.
``validate()`` raises ``ValueError`` naming the key, the bad value and the allowed values before
any data is loaded.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pare_core import registry

# "Auto" sentinels: a value of -1 means "the paper's value for this task's modality".
AUTO = -1

# Allowed values of the choice keys: declared here once, as the fields' types; validation and every
# module that branches on a choice read them (``choices``).
Body = Literal["full", "frozen", "layernorm"]
GateSelection = Literal["topk", "threshold", "random", "none"]
Side = Literal["low", "high"]
GateNoise = Literal["scores", "logits"]
StraightThrough = Literal["keep", "blend"]
Pairing = Literal["rank", "index"]
Shape = Literal["linear", "cosine", "step", "exp", "constant"]
Formula = Literal["official", "endpoints"]
ClsMethod = Literal["twocls", "multilabel"]
Objective = Literal["otdd", "mmd", "l2"]
Device = Literal["auto", "cpu", "cuda"]
# Keys whose allowed values are the names of a registry (pare_core.registry), not a fixed list.
REGISTRY_KEYS = {
    "method": registry.METHODS,
    "aux": registry.AUXES,
    "task.name": registry.TASKS,
    "backbone.name": registry.BACKBONES,
}


def choices(literal: Any) -> tuple[str, ...]:
    """The allowed values of a choice type above, e.g. ``choices(GateSelection)``."""
    return typing.get_args(literal)


@dataclass
class TaskConfig:
    name: str = "digits"
    tokens: int = 0  # tokens per sample; 0 = the task's default (rich tokens: 8-16 values each)
    n_train: int = 0  # cap on training samples (before the val split); 0 = the task's default
    val_frac: float = 0.2  # validation carved from train (never the test set)
    max_test: int = 0  # score a fixed subset of at most this many test samples; 0 = all (tasks.common)


@dataclass
class BackboneConfig:
    name: str = "minilm"
    path: str = ""  # hub name or local directory for swin_base / roberta_base / mpnet; "" = built-in
    tiny: bool = False  # build a tiny randomly initialised config (tests of the hub loading code)


@dataclass
class TrainConfig:
    epochs: int = 20
    steps_per_epoch: int = 0  # 0 = one pass over the training split
    batch_size: int = 32
    lr: float = 1e-3  # embedder, heads, gate, LayerNorms
    weight_decay: float = 0.01
    warmup_frac: float = 0.1  # linear warm-up, then cosine to 0 (per optimiser step)
    clip: float = 1.0  # gradient-norm clip; 0 = off
    eval_batch_size: int = 512


@dataclass
class FinetuneConfig:
    body: Body = "frozen"  # ORCA's finetune_method family
    body_lr: float = 3e-5  # learning rate of the pretrained body when body=full


@dataclass
class GateConfig:
    selection: GateSelection = "topk"
    threshold: float = 0.5  # for selection=threshold: tokens with gate score > t are replaceable
    tau: float = 0.9  # Gumbel-softmax temperature (official code: 0.9)
    warm_frac: float = AUTO  # share of train.epochs in the Gumbel straight-through phase; AUTO = PAPER_WARM_FRAC
    replace_warm: Side = "low"  # which target tokens are overwritten in the warm phase (official: low)
    replace_after: Side = "high"  # ... and after it (official: high)
    noise: GateNoise = "scores"  # warm-phase Gumbel noise on the sigmoid scores (official) or the logits
    straight_through: StraightThrough = "keep"  # keep (official: kept tokens x keep mask, replaced overwritten)
    pairing: Pairing = "rank"  # after the warm phase: rank (official: best source onto lowest picked target)


@dataclass
class CurriculumConfig:
    shape: Shape = "linear"  # linear: the paper
    start: float = 0.64  # replaced-token ratio at epoch 0 (paper: 2000/3136 2D, 32/50 ECG)
    end: float = AUTO  # ratio the schedule heads for; AUTO = PAPER_CURRICULUM_END (0.16 2D, 0 1D)
    levels: int = 4  # number of plateaus for shape=step
    formula: Formula = "official"  # official: k = floor(T * ratio(epoch / E)); endpoints: round, epoch / (E - 1)


@dataclass
class MixConfig:
    weight: float = AUTO  # w in l(f(x),y) + w*[...]; AUTO = 1.0 (2D cls) / 0.1 (1D) / 0.3 (dense)
    cls_method: ClsMethod = "twocls"  # twocls (source head) | multilabel (joint soft label)
    batch_frac: float = 1.0  # fraction of each batch that also gets a mixed copy (paper: 1.0, every sample)


@dataclass
class SourceConfig:
    size: int = 5000  # source subset size (official maxsize)
    tokens: int = 0  # source tokens per sample; 0 = as many as the target has


@dataclass
class AlignConfig:
    """ORCA stage 1 (also usable before PaRe)."""

    epochs: int = AUTO  # 0 = no alignment stage; AUTO = 60 for method=orca (official), 0 otherwise
    objective: Objective = "otdd"
    lr: float = AUTO  # AUTO = 10 x train.lr when train.lr <= 1e-3, else train.lr (the official rule)
    max_samples: int = 128  # target samples per class per step (official maxsamples)
    clusters: int = 10  # k-means pseudo-labels for regression/dense targets


@dataclass
class MonaConfig:
    """MoNA's bi-level stage (pare_core/methods/mona.py; no official code: choices documented there)."""

    epochs: int = 5  # outer (meta) steps of the bi-level stage
    inner_steps: int = 1  # simulated fine-tuning steps of the body + head per outer step (SGD)
    inner_lr: float = 1e-2
    outer_lr: float = 1e-3  # Adam on the target embedder + head init
    warmup_steps: int = 10  # embedder warm-up on the target loss (body fixed) before the meta steps
    source_weight: float = 1.0  # weight of the source-knowledge term in the outer objective
    probe_samples: int = 512  # source samples the source model's classifier (its P(Y|X)) is fitted on


@dataclass
class LsgConfig:
    weight: float = 0.1  # auxiliary loss weight when aux=lsg


@dataclass
class RuntimeConfig:
    device: Device = "auto"
    bf16: bool = True  # autocast on CUDA only
    compile: bool = False  # torch.compile of the body's forward alone
    # The whole step captured (pare_core.capture): method forward + loss + backward compiled, CUDA graphs
    # on CUDA. Off by default: no GPU was available to measure it (bench/gpu.sh does, compile time included).
    capture: bool = False
    threads: int = 0  # torch intra-op threads; 0 = leave as is
    fail_at_epoch: int = -1  # test hook: raise once at this epoch (fault-tolerance tests)


@dataclass
class TrialConfig:
    method: str = "pare"  # a name of registry.METHODS
    aux: str = "none"  # a name of registry.AUXES
    seed: int = 0
    task: TaskConfig = field(default_factory=TaskConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    mona: MonaConfig = field(default_factory=MonaConfig)
    lsg: LsgConfig = field(default_factory=LsgConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    # -- flat dotted keys --------------------------------------------------------------------
    def to_flat(self) -> dict[str, Any]:
        """``{"gate.threshold": 0.5, ..., "method": "pare"}``: what sweeps and tables use."""
        return _flatten(self)

    @classmethod
    def from_flat(cls, flat: dict[str, Any], base: "TrialConfig | None" = None) -> "TrialConfig":
        """Apply dotted-key overrides to ``base`` (default: paper defaults), then validate."""
        cfg = dataclasses.replace(base) if base is not None else cls()
        cfg = _from_dict(cls, cfg.to_flat())  # deep copy
        for key, value in flat.items():
            _set(cfg, key, value)
        cfg.validate()
        return cfg

    def validate(self) -> "TrialConfig":
        """Raise ValueError naming the key, the value and what is allowed. Loads no data."""
        for key, names in REGISTRY_KEYS.items():
            _check_choice(key, self._get(key), names)
        for key, literal in _choice_keys().items():
            _check_choice(key, self._get(key), choices(literal))
        for key, bound in NUMERIC_BOUNDS.items():
            bound.check(key, self._get(key))
        if self.method == "orca" and self.align.epochs == 0:
            raise ValueError(
                "align.epochs=0 is invalid for method='orca': allowed values are >= 1 or "
                f"{AUTO} (the official 60); without alignment ORCA is method='finetune'"
            )
        if self.runtime.capture and self.runtime.compile:
            raise ValueError(
                "runtime.compile=True is invalid with runtime.capture=true (the captured step compiles the "
                "body too): allowed values with it are false"
            )
        return self

    def _get(self, key: str) -> Any:
        obj: Any = self
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj


@dataclass(frozen=True)
class Bound:
    """The allowed values of a numeric key: from ``low`` (excluded when ``strict``) to ``high``, and
    AUTO too where ``auto`` says what AUTO stands for."""

    low: float
    high: float = math.inf
    strict: bool = False
    auto: str = ""

    def check(self, key: str, value: float) -> None:
        """Raise ValueError naming the key, the value and the allowed values unless ``value`` is one."""
        if self.auto and value == AUTO:
            return
        above = self.low < value if self.strict else self.low <= value
        if above and value <= self.high:
            return
        auto = f"{AUTO} ({self.auto}) or " if self.auto else ""
        if math.isinf(self.high):
            allowed = f"{'>' if self.strict else '>='} {self.low:g}"
            raise ValueError(f"{key}={value!r} is invalid: allowed values are {auto}{allowed}")
        interval = f"{'(' if self.strict else '['}{self.low:g}, {self.high:g}]"
        raise ValueError(f"{key}={value!r} is out of range: allowed values are {auto}in {interval}")


UNIT = Bound(0.0, 1.0)
POSITIVE = Bound(0.0, strict=True)
AT_LEAST_ONE = Bound(1)
NON_NEGATIVE = Bound(0)
# The allowed values of every bounded numeric key, in one table: ``validate`` checks them before any data
# is loaded. (``seed`` and ``runtime.fail_at_epoch`` take any integer.)
NUMERIC_BOUNDS: dict[str, Bound] = {
    **dict.fromkeys(("gate.threshold", "curriculum.start", "task.val_frac", "train.warmup_frac"), UNIT),
    "mix.batch_frac": Bound(0.0, 1.0, strict=True),
    "gate.warm_frac": Bound(0.0, 1.0, auto="the paper's share of the epochs for the task's layout"),
    "curriculum.end": Bound(0.0, 1.0, auto="the paper's end ratio for the task's layout"),
    **dict.fromkeys(
        (
            "train.epochs",
            "train.batch_size",
            "train.eval_batch_size",
            "curriculum.levels",
            "source.size",
            "mona.inner_steps",
            "mona.probe_samples",
            "align.max_samples",
            "align.clusters",
        ),
        AT_LEAST_ONE,
    ),
    **dict.fromkeys(
        (
            "task.tokens",
            "task.n_train",
            "task.max_test",
            "train.steps_per_epoch",
            "source.tokens",
            "mona.epochs",
            "mona.warmup_steps",
            "mona.source_weight",
            "runtime.threads",
            "train.clip",
            "train.weight_decay",
            "lsg.weight",
        ),
        NON_NEGATIVE,
    ),
    **dict.fromkeys(("train.lr", "finetune.body_lr", "mona.inner_lr", "mona.outer_lr", "gate.tau"), POSITIVE),
    "mix.weight": Bound(0, auto="paper default"),
    "align.epochs": Bound(0, auto="paper default"),
    "align.lr": Bound(0.0, strict=True, auto="10 x train.lr, the official rule"),
}


# Keys that change how a run executes, not what it computes (trial identity leaves them out).
EXECUTION_KEYS = (
    "runtime.threads",
    "runtime.compile",
    "runtime.capture",
    "runtime.fail_at_epoch",
    "train.eval_batch_size",
)

ORCA_ALIGN_EPOCHS = 60  # official embedder_epochs for most tasks (100 for NinaPro, 20 for OpenML)
# PaRe's constants (BIT-DA/PaRe src/main_PaRe*.py and configs; docs/methods.md has file:line for each),
# by the task's (kind, layout). The warm phase is the paper's share of the run: 10 of the 60 epochs of
# the 2D configs, 5 of the 25 of DeepSEA (the middle of the 1D configs: ECG 5/15, Satellite 5/60).
# The curriculum heads for end = (begin_num - end_num) / T: 500 of 3136 tokens in 2D, 0 in 1D.
PAPER_MIX_WEIGHT = {"dense": 0.3, "2d": 1.0, "1d": 0.1}
PAPER_WARM_FRAC = {"2d": 10 / 60, "1d": 5 / 25}
PAPER_CURRICULUM_END = {"2d": 0.16, "1d": 0.0}


def resolve(cfg: "TrialConfig", kind: str, layout: str) -> "TrialConfig":
    """A copy of ``cfg`` with every AUTO value replaced by what a run of this task uses.

    The one place where AUTO is resolved, so a run, its results and its identity all see the same
    values. ``kind`` and ``layout`` are the task's (``TaskSpec.kind``: classification | dense | ...;
    ``TaskSpec.layout``: 1d | 2d).
    """
    out = copy.deepcopy(cfg)
    if out.mix.weight == AUTO:
        out.mix.weight = PAPER_MIX_WEIGHT["dense" if kind == "dense" else layout]
    if out.gate.warm_frac == AUTO:
        out.gate.warm_frac = PAPER_WARM_FRAC[layout]
    if out.curriculum.end == AUTO:
        out.curriculum.end = PAPER_CURRICULUM_END[layout]
    out.align.epochs = resolve_align_epochs(out.method, out.align.epochs)
    if out.align.lr == AUTO:  # the official rule: 10 x the task lr when it is <= 1e-3
        out.align.lr = 10 * out.train.lr if out.train.lr <= 1e-3 else out.train.lr
    return out


def resolve_align_epochs(method: str | None, epochs: int) -> int:
    """``align.epochs`` with AUTO resolved: the official 60 for ORCA; no stage before other methods."""
    if epochs != AUTO:
        return epochs
    return ORCA_ALIGN_EPOCHS if method == "orca" else 0


def inert_keys(flat: dict[str, Any]) -> set[str]:
    """The keys of ``flat`` whose value has no effect on a run with these values, e.g.
    ``gate.threshold`` unless ``gate.selection=threshold``, or ``mona.*`` unless ``method=mona``.
    Labels and tables leave them out instead of showing a default. A condition on a key missing
    from ``flat`` counts as met (the key may act)."""
    method, selection = flat.get("method"), flat.get("gate.selection")
    pare = method in (None, "pare")
    mixes = pare and selection != "none"  # selection=none: PaRe never builds a mixed batch
    ranks = mixes and selection in (None, "topk", "threshold")  # random ignores the gate's scores
    aligns = method in (None, "orca", "pare") and resolve_align_epochs(method, flat.get("align.epochs", 1)) > 0
    rules = (  # (key or "prefix.", does it act?): the first rule naming a key decides
        ("gate.selection", pare),
        ("gate.threshold", mixes and selection in (None, "threshold")),
        ("gate.noise", ranks),
        ("gate.straight_through", ranks),
        ("gate.pairing", ranks),
        ("gate.tau", ranks),
        ("gate.warm_frac", ranks),
        ("gate.replace_warm", ranks),
        ("gate.replace_after", ranks),
        ("curriculum.levels", mixes and flat.get("curriculum.shape") in (None, "step")),
        ("gate.", mixes),
        ("curriculum.", mixes),
        ("mix.", mixes),
        ("align.", aligns),
        ("mona.", method in (None, "mona")),
        ("lsg.", flat.get("aux") in (None, "lsg")),
        ("finetune.body_lr", flat.get("finetune.body") in (None, "full")),
    )
    inert = set()
    for key in flat:
        acts = next(
            (active for name, active in rules if key == name or (name.endswith(".") and key.startswith(name))), True
        )
        if not acts:
            inert.add(key)
    return inert


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["gate.threshold=0.6"]`` -> ``{"gate.threshold": "0.6"}`` (values are typed by the config)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--set {pair!r} is invalid: expected KEY=VALUE, e.g. gate.threshold=0.6")
        out[key.strip()] = value
    return out


# -- helpers ----------------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = value
    return out


def _from_dict(cls: type, flat: dict[str, Any]) -> Any:
    cfg = cls()
    for key, value in flat.items():
        _set(cfg, key, value)
    return cfg


def allowed_keys() -> list[str]:
    return sorted(TrialConfig().to_flat())


def _set(cfg: TrialConfig, key: str, value: Any) -> None:
    parts = key.split(".")
    obj: Any = cfg
    for part in parts[:-1]:
        child = getattr(obj, part, None)
        if not dataclasses.is_dataclass(child):
            raise ValueError(f"unknown config key {key!r}: allowed keys are {', '.join(allowed_keys())}")
        obj = child
    names = {f.name: f for f in dataclasses.fields(obj)}
    f = names.get(parts[-1])
    if f is None or dataclasses.is_dataclass(getattr(obj, parts[-1])):
        raise ValueError(f"unknown config key {key!r}: allowed keys are {', '.join(allowed_keys())}")
    setattr(obj, parts[-1], _coerce(key, value, _field_types(type(obj))[f.name]))


@functools.lru_cache(maxsize=1)
def _choice_keys() -> dict[str, Any]:
    """Flat key -> its Literal type, for every choice key of the schema."""
    out = {}
    for key in TrialConfig().to_flat():
        *groups, leaf = key.split(".")
        cls = TrialConfig
        for group in groups:
            cls = _field_types(cls)[group]
        typ = _field_types(cls)[leaf]
        if typing.get_origin(typ) is Literal:
            out[key] = typ
    return out


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, type]:
    """A config dataclass's field types (``from __future__ import annotations`` keeps them as strings;
    resolving them is most of the cost of building a config, so once per class)."""
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, typ: type) -> Any:
    """Accept a value of the field's type; strings from ``--set k=v`` are parsed. A choice key takes
    a string (``validate`` checks it is one of the allowed values)."""
    if typing.get_origin(typ) is Literal:
        typ = str
    if isinstance(value, str) and typ is not str:
        text = value.strip()
        try:
            if typ is bool:
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return lowered in ("true", "1", "yes")
            return typ(float(text)) if typ is int and float(text).is_integer() else typ(text)
        except ValueError:
            raise ValueError(f"{key}={value!r} has the wrong type: allowed values are of type {typ.__name__}") from None
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if typ is int and hasattr(value, "__index__") and not isinstance(value, bool):
        return int(value)
    if typ is float and hasattr(value, "__float__") and not isinstance(value, (bool, str)):
        return float(value)
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise ValueError(
            f"{key}={value!r} has the wrong type {type(value).__name__}: allowed values are of type {typ.__name__}"
        )
    return value


def _check_choice(key: str, value: Any, allowed: typing.Iterable[str]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is invalid: allowed values are {', '.join(allowed)}")
