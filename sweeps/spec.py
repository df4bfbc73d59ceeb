"""Sweep specs: a YAML file in ``sweeps/configs/`` plus the command line -> a validated list of trials.

Nothing here imports Ray: every trial's config is built and checked with ``TrialConfig.from_flat``
before Ray starts, so one bad value fails the launch in well under a second, naming the key, the
allowed values and where the value came from (which YAML field, ``--base`` file or ``--set``).

Precedence, lowest first: paper defaults < spec ``base`` < ``--base FILE`` < arm/grid values < seed
< smoke overrides (``--smoke-test``) < ``--set``.

The spec is the first layer of ``sweeps/`` (docs/sweeps.md, "How sweeps/ is laid out"): it knows the YAML
and the flags, and nothing of how trials are keyed, fused, launched or recorded. With ``fuse_seeds`` (or
``--fuse-seeds``) it only records the wish; ``sweeps.plan.fuse_arms`` groups each arm's seeds.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pare_core.config import TrialConfig, parse_sets
from sweeps.options import RESOURCE_RULES, Overrides, resource_ok

SPEC_DIR = Path(__file__).resolve().parent / "configs"
TUNED_DIR = SPEC_DIR / "tuned"
DOMAINS = ("uniform", "loguniform", "choice")  # how a searched key is sampled (search: optuna)
SCHEDULERS = ("fifo", "asha")
SEARCHES = ("grid", "optuna")
# The keys each search type reads (sweeps.runner): max_concurrent caps the trials that run at once (a
# grid's default: as many as the resources fit), num_samples and seed are the searcher's.
OPTUNA_CONCURRENCY = 2  # a searcher learns from finished trials: few at once, unless the spec says more
SEARCH_KEYS = {"grid": ("type", "max_concurrent"), "optuna": ("type", "num_samples", "max_concurrent", "seed")}
_FIELDS = {
    "name",
    "base",
    "arms",
    "grid",
    "space",
    "seeds",
    "metric",
    "mode",
    "search",
    "scheduler",
    "resources",
    "checkpoint_every",
    "max_failures",
    "gpu_s_per_epoch",
    "tuned",
    "smoke",
    "fuse_seeds",
}
_SMOKE_FIELDS = {"overrides", "seeds", "arms", "grid", "search", "resources"}  # resources: a GPU preset's CPU smoke


class SpecError(ValueError):
    """A bad spec, ``--base`` file or flag; the message says where, which key and what is allowed."""


@dataclass
class Sweep:
    """A resolved sweep: everything the runner needs, JSON-serialisable (saved as ``sweep.json``)."""

    name: str
    spec_file: str
    smoke: bool
    base: dict[str, Any]  # full flat config before arms, with the first seed (Optuna's constants)
    trials: list[dict[str, Any]]  # grid search: one full flat config per trial; empty for Optuna
    space: dict[str, dict[str, list]]  # Optuna: key -> {"uniform" | "loguniform" | "choice": values}
    swept: list[str]  # keys that tell arms apart (seed excluded): the summary's columns
    metric: str
    mode: str
    search: dict[str, Any]
    scheduler: dict[str, Any]
    resources: dict[str, float]
    checkpoint_every: int
    max_failures: int
    gpu_s_per_epoch: float
    tuned: bool  # write the best config to configs/tuned/<task>.yaml (tune_task)
    seeds: list[int] = field(default_factory=list)
    # arms whose resources differ from ``resources``: [{"arm": {swept key: value}, "resources": {cpu, gpu}}]
    arm_resources: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # what launched it (sweeps.identity.provenance)
    reused: list[str] = field(default_factory=list)  # folders of finished trials this sweep reuses (sweeps.reuse)
    arm_names: list[str] = field(default_factory=list)  # each trial's arm, as the spec names it (grid: one per trial)
    fuse_seeds: bool = False  # each arm's seeds train as one fused trial where they can (sweeps.fused)
    fallbacks: dict[str, str] = field(default_factory=dict)  # fuse_seeds: arm name -> why it runs a trial per seed

    @property
    def n_trials(self) -> int:
        return len(self.trials) if self.search["type"] == "grid" else int(self.search["num_samples"])

    def trial_resources(self, config: dict[str, Any]) -> dict[str, float]:
        """``{cpu, gpu}`` of the trial with this config: its arm's own resources, else the sweep's."""
        return next(
            (a["resources"] for a in self.arm_resources if all(config.get(k) == v for k, v in a["arm"].items())),
            self.resources,
        )


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def spec_path(spec: str) -> Path:
    """A spec name in ``sweeps/configs/`` (``ablate_gate``, ``paper/dna_gate``) or the path of any spec YAML file."""
    return Path(spec) if spec.endswith((".yaml", ".yml")) else SPEC_DIR / f"{spec}.yaml"


def spec_names() -> list[str]:
    """Every spec name in ``sweeps/configs/`` and its folders (``paper/dna_gate``), not the tuned bases."""
    return sorted(
        p.relative_to(SPEC_DIR).with_suffix("").as_posix()
        for p in SPEC_DIR.rglob("*.yaml")
        if TUNED_DIR not in p.parents
    )


def load_spec(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The spec at ``path`` with its ``extends:`` chain applied: presets that share a setting (the
    paper's dna ablations share the official DeepSEA training) state it once. ``extends`` names a spec
    like the command line does (``paper/dna``, or a .yaml path relative to this file); this file's
    fields replace the base's, except ``base`` and ``smoke.overrides``, which are merged key by key."""
    raw = load_yaml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise SpecError(f"{path} extends: expected a spec name (paper/dna) or a .yaml path, got {parent!r}")
    base_path = spec_path(parent)
    if parent.endswith((".yaml", ".yml")) and not base_path.is_absolute():
        base_path = path.parent / base_path
    if not base_path.is_file():
        raise SpecError(f"{path} extends: {parent!r}: no such spec ({base_path})")
    seen = (*chain, path.resolve())
    if base_path.resolve() in seen:
        cycle = " -> ".join(str(p) for p in (*seen, base_path.resolve()))
        raise SpecError(f"{path} extends: {parent!r} is circular: {cycle}")
    inherited = load_spec(base_path, seen)
    merged = {**inherited, **raw}
    merged["base"] = {**(inherited.get("base") or {}), **(raw.get("base") or {})}
    if "smoke" in inherited and "smoke" in raw:
        smoke = {**inherited["smoke"], **raw["smoke"]}
        smoke["overrides"] = {**(inherited["smoke"].get("overrides") or {}), **(raw["smoke"].get("overrides") or {})}
        merged["smoke"] = smoke
    return merged


def build(spec: str, args: Overrides) -> Sweep:
    """Load the spec (see :func:`spec_path`), apply the flags and validate every trial's config."""
    path = spec_path(spec)
    raw = load_spec(path)
    _check_fields(path, raw, _FIELDS)
    smoke = raw.get("smoke") or {}
    _check_fields(f"{path} smoke", smoke, _SMOKE_FIELDS)
    use = (lambda key, default: smoke.get(key, raw.get(key, default))) if args.smoke_test else raw.get

    layers: list[tuple[str, dict[str, Any]]] = [(f"{path} base", raw.get("base") or {})]
    if args.base:
        layers.append((f"--base {args.base}", load_yaml(args.base)))
    late = [(f"{path} smoke.overrides", smoke.get("overrides") or {})] if args.smoke_test else []
    try:
        late.append(("--set", parse_sets(args.sets)))
    except ValueError as err:
        raise SpecError(str(err)) from None
    if "seed" in late[-1][1]:
        raise SpecError("--set seed=... is not allowed: use --seeds (e.g. --seeds 0-4)")
    base = _validated({}, layers)

    search = _search(path, {"type": "grid", **(use("search", None) or {})})
    fuse = _fuse_seeds(path, raw.get("fuse_seeds", False) if args.fuse_seeds is None else args.fuse_seeds, search)
    seeds = args.seeds or list(use("seeds", [0]))
    trials, space, arms = [], {}, []
    if search["type"] == "grid":
        arms = _arms(path, use("arms", None) or {"": {}}, use("grid", None) or {})
        trials = _trials(base, arms, seeds, late)
    else:
        if len(seeds) != 1:
            raise SpecError(f"search: optuna samples one config per trial, so it takes one seed, got --seeds {seeds}")
        space = _space(path, raw.get("space") or {}, base, late)
    base = _validated(base, [("--seeds", {"seed": seeds[0]}), *late])
    swept = list(space) or [k for k in base if k != "seed" and len({repr(t[k]) for t in trials}) > 1]

    resources = _resources(f"{path} resources", use("resources", None), {"cpu": 1.0, "gpu": 0.0}, args)
    spec_resources = {"cpu": 1.0, "gpu": 0.0, **(use("resources", None) or {})}  # validated just above
    arm_resources = []
    for (origin, _, given, _), trial in zip(arms, trials[:: len(seeds)]):  # trials go arm by arm, seeds inside
        own = resources if given is None else _resources(f"{origin}: resources", given, spec_resources, args)
        if own != resources:
            arm_resources.append({"arm": {k: trial[k] for k in swept}, "resources": own})
    arm_names = [name for *_, name in arms for _ in seeds]
    scheduler = {"type": "fifo", **(raw.get("scheduler") or {})}
    _check_choice(f"{path} scheduler.type", scheduler["type"], SCHEDULERS)
    metric, mode = raw.get("metric", "val_error"), raw.get("mode", "min")
    _check_choice(f"{path} mode", mode, ("min", "max"))
    return Sweep(
        name=args.name or _name(raw.get("name", path.stem), base) + ("_smoke" if args.smoke_test else ""),
        spec_file=str(path),
        smoke=args.smoke_test,
        base=base,
        trials=trials,
        space=space,
        swept=swept,
        metric=metric,
        mode=mode,
        search=search,
        scheduler=scheduler,
        resources=resources,
        checkpoint_every=_int_at_least(path, "checkpoint_every", raw.get("checkpoint_every", 1), 1),
        max_failures=_int_at_least(path, "max_failures", raw.get("max_failures", 2), -1),  # -1: retry forever
        gpu_s_per_epoch=float(raw.get("gpu_s_per_epoch", 0.0)),
        tuned=bool(raw.get("tuned", False)),
        seeds=seeds,
        arm_resources=arm_resources,
        arm_names=arm_names,
        fuse_seeds=fuse,
    )


# -- pieces ------------------------------------------------------------------------------------


def _validated(flat: dict[str, Any], layers: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Apply each layer over ``flat`` and validate; an error is prefixed with the layer it came from."""
    cfg = TrialConfig.from_flat(flat) if flat else TrialConfig()
    for origin, layer in layers:
        if not isinstance(layer, dict):
            raise SpecError(f"{origin}: expected a mapping of flat config keys (gate.threshold: 0.5), got {layer!r}")
        try:
            cfg = TrialConfig.from_flat(layer, base=cfg)
        except ValueError as err:
            raise SpecError(f"{origin}: {err}") from None
    return cfg.to_flat()


def _arms(
    path: Path, arms: dict[str, dict[str, Any]] | list[dict[str, Any]], grid: dict[str, list]
) -> list[tuple[str, dict[str, Any], Any, str]]:
    """Explicit arms crossed with the grid's cartesian product: (where it came from, for error
    messages; its config keys; its own ``resources`` or None; its name).

    Arms are named in the spec (``arms: {random: {...}, topk: {...}}``); a grid point is named by its
    values (``shape=linear``), and an arm crossed with a grid by both (``pare, name=dna``). Arms given
    as a list are named by their values too."""
    named = arms if isinstance(arms, dict) else {_point_name(a): a for a in arms}
    if (
        not all(isinstance(a, dict) for a in named.values())
        or not isinstance(grid, dict)
        or (isinstance(arms, list) and len(named) != len(arms))
    ):
        raise SpecError(
            f"{path}: arms must be a mapping of arm name: {{key: value}} (or a list of distinct mappings) "
            "and grid a mapping of key: [values]"
        )
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{path} grid.{key}: expected a non-empty list of values, got {values!r}")
    out = []
    for arm_name, arm in named.items():
        for combo in itertools.product(*grid.values()):
            point = dict(zip(grid, combo))
            keys = {k: v for k, v in arm.items() if k != "resources"}
            name = ", ".join(n for n in (arm_name, _point_name(point)) if n) or "base"
            out.append(
                (
                    f"{path} arms.{arm_name or '(base)'}" + (f" x grid {point}" if point else ""),
                    {**keys, **point},
                    arm.get("resources"),
                    name,
                )
            )
    return out


def _point_name(keys: dict[str, Any]) -> str:
    """``selection=threshold, threshold=0.5``, ``task=dna``: config values as a name, each key shortened to
    its last part (``task.name`` to its group)."""

    def short(key: str) -> str:
        group, _, leaf = key.rpartition(".")
        return group if leaf == "name" and group else leaf

    return ", ".join(f"{short(k)}={v}" for k, v in keys.items() if k != "resources")


def _trials(base: dict[str, Any], arms, seeds: list[int], late) -> list[dict[str, Any]]:
    trials: list[dict[str, Any]] = []
    for origin, arm, _, _ in arms:
        arm_flat = _validated(base, [(origin, arm)])
        trials.extend(_validated(arm_flat, [("--seeds", {"seed": s}), *late]) for s in seeds)
    seen: dict[str, int] = {}
    for i, trial in enumerate(trials):
        first = seen.setdefault(repr(sorted(trial.items())), i)
        if first != i:
            raise SpecError(
                f"trials {first} and {i} have identical configs (seed {trial['seed']}): an arm repeats, "
                "or --set/--base overrides a key that the spec sweeps"
            )
    return trials


def _fuse_seeds(path: Path, value: Any, search: dict[str, Any]) -> bool:
    """``fuse_seeds`` checked: a boolean, and only for a grid (a searcher samples one config and one seed
    per trial, so there are no seeds to fuse)."""
    if not isinstance(value, bool):
        raise SpecError(f"{path} fuse_seeds={value!r} is invalid: allowed values are true, false")
    if value and search["type"] != "grid":
        raise SpecError(
            f"fuse_seeds (spec key or --fuse-seeds) is invalid with search type {search['type']}: a searcher "
            "samples one config and one seed per trial, so there are no seeds to fuse; allowed values with "
            f"search {search['type']}: false (drop --fuse-seeds, or --no-fuse-seeds over the spec's fuse_seeds: true)"
        )
    return value


def _space(path: Path, space: dict[str, Any], base: dict[str, Any], late) -> dict[str, dict[str, list]]:
    """Check each searched key's domain; validate its bounds (or every choice) on top of ``base``."""
    set_keys = set(late[-1][1])
    out = {}
    for key, dom in space.items():
        origin = f"{path} space.{key}"
        if key in set_keys:
            raise SpecError(f"--set {key}=... conflicts with the search: {key} is searched by {path}")
        if not (isinstance(dom, dict) and len(dom) == 1 and next(iter(dom)) in DOMAINS):
            raise SpecError(f"{origin}: expected one of {', '.join(f'{{{d}: [...]}}' for d in DOMAINS)}, got {dom!r}")
        kind, values = next(iter(dom.items()))
        if not isinstance(values, list) or (kind != "choice" and len(values) != 2) or not values:
            raise SpecError(f"{origin}: {kind} takes {'a list of values' if kind == 'choice' else '[low, high]'}")
        for value in values:
            _validated(base, [(origin, {key: value})])
        out[key] = {kind: values}
    if not out:
        raise SpecError(f"{path}: search type optuna needs a non-empty space")
    return out


def _resources(where: str, given: Any, under: dict[str, float], args: Overrides) -> dict[str, float]:
    """``given`` (``{cpu, gpu}``, either may be left out) over ``under``, validated; then
    ``--cpus-per-trial`` and ``--gpus-per-trial``, which override every spec and arm value."""
    _check_fields(where, given or {}, {"cpu", "gpu"})
    out = {**under, **(given or {})}
    for kind, value in out.items():
        if not resource_ok(kind, value):
            raise SpecError(f"{where}: {kind}={value!r} is invalid: allowed values are {RESOURCE_RULES[kind]}")
    flags = {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}
    return {kind: float(value if flags[kind] is None else flags[kind]) for kind, value in out.items()}


def _name(template: str, base: dict[str, Any]) -> str:
    """``tune_{task.name}`` -> ``tune_digits``: names may use the base config's keys."""
    try:
        return re.sub(r"\{([\w.]+)\}", lambda m: str(base[m.group(1)]), template)
    except KeyError as err:
        raise SpecError(f"name {template!r}: unknown config key {err.args[0]!r}") from None


def _check_fields(where: Any, raw: dict[str, Any], allowed: set[str]) -> None:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown field {unknown[0]!r}: allowed fields are {', '.join(sorted(allowed))}")


def _search(path: Path, search: dict[str, Any]) -> dict[str, Any]:
    """``search`` checked: a known type, only the keys that type reads, counts that are positive integers."""
    _check_choice(f"{path} search.type", search["type"], SEARCHES)
    _check_fields(f"{path} search (type {search['type']})", search, set(SEARCH_KEYS[search["type"]]))
    if search["type"] == "optuna":
        if "num_samples" not in search:
            raise SpecError(f"{path} search: type optuna needs num_samples (an integer >= 1)")
        search.setdefault("max_concurrent", OPTUNA_CONCURRENCY)
    for key in ("num_samples", "max_concurrent"):
        if key in search:
            _int_at_least(path, f"search.{key}", search[key], 1)
    return search


def _check_choice(where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"{where}={value!r} is invalid: allowed values are {', '.join(allowed)}")


def _int_at_least(path: Path, key: str, value: Any, lo: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise SpecError(f"{path} {key}={value!r} is invalid: allowed values are integers >= {lo}")
    return value
