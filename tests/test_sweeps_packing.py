"""How a sweep's trials pack on a node (``sweeps.packing``): trials and seeds at once, what limits them,
and the dry run's advice when a GPU would wait on CPUs (issue 21). No Ray: the plan is arithmetic on
the trials' resources and the node shapes of cluster.yaml or this machine."""

from __future__ import annotations

import pytest
from sweep_results import write_spec

from sweeps import packing
from sweeps.cli import main
from sweeps.options import Overrides
from sweeps.packing import CPUS, GPU_FRACTION, TRIAL_COUNT, Node, pack
from sweeps.plan import fuse_arms
from sweeps.spec import SpecError, build

A10G = Node("gpu_a10g_spot", 8, 1)  # cluster.yaml's workhorse: 8 CPUs per GPU


def sixteen_trials(tmp_path, gpu: float, **fields):
    """2 arms x 8 seeds of fine-tuning, each trial 1 CPU and ``gpu`` GPU."""
    arms = {"slow": {"train.lr": 0.001}, "fast": {"train.lr": 0.003}}
    path = write_spec(
        tmp_path / "spec.yaml", arms=arms, seeds=list(range(8)), resources={"cpu": 1, "gpu": gpu}, **fields
    )
    return build(str(path), Overrides())


def test_sixteen_sixteenth_gpu_trials_wait_on_eight_cpus_and_fusing_packs_them(tmp_path):
    sweep = sixteen_trials(tmp_path, 1 / 16)
    plain = pack(sweep, A10G)
    assert (plain.trials, plain.seeds, plain.limits) == (8, 8, [CPUS])
    assert plain.room == {TRIAL_COUNT: 16, GPU_FRACTION: 16, CPUS: 8} and plain.waits_on_cpus
    fused = pack(fuse_arms(sixteen_trials(tmp_path, 1 / 16, fuse_seeds=True)), A10G)
    assert (fused.trials, fused.seeds, fused.limits, fused.waits_on_cpus) == (2, 16, [TRIAL_COUNT], False)
    tips = packing.advice(plain, fused)
    assert "the GPU waits on CPUs" in tips[0] and "--gpus-per-trial 0.125" in tips[0]
    assert "--fuse-seeds packs more: 2 trial processes, 16 seeds at once per GPU" in tips[1]


def test_an_eighth_of_a_gpu_per_cpu_is_balanced_and_cpu_trials_leave_the_gpu_idle(tmp_path):
    balanced = pack(sixteen_trials(tmp_path, 1 / 8), A10G)
    assert (balanced.trials, balanced.limits, balanced.waits_on_cpus) == (8, [GPU_FRACTION, CPUS], False)
    on_cpus = pack(sixteen_trials(tmp_path, 0), A10G)
    assert (on_cpus.trials, on_cpus.on_gpu) == (8, False)
    assert packing.advice(on_cpus, None) == [
        "the GPU idles: trials hold no GPU, so they train on the node's CPUs; --gpus-per-trial 0.125 puts 8 on "
        "each GPU (what its CPUs feed)"
    ]
    assert packing.advice(pack(sixteen_trials(tmp_path, 0), Node("laptop", 2, 0)), None) == []


def test_local_slots_follow_the_trials_resources():
    gate = build("ablate_gate", Overrides())  # 1 CPU per trial
    assert packing.local_slots(gate, cpus=2, gpus=0) == 2 and packing.local_slots(gate, cpus=16, gpus=0) == 16
    backbone = build("ablate_backbone", Overrides())  # arms hold 0.5 or 0.25 GPU
    assert packing.local_slots(backbone, cpus=16, gpus=0) == 0 and packing.local_slots(backbone, cpus=16, gpus=1) == 2
    tune = build("tune_task", Overrides())
    assert packing.local_slots(tune, cpus=64, gpus=0) == tune.search["max_concurrent"]


def test_cluster_yaml_offers_its_gpu_workers_not_its_cpu_less_head():
    assert packing.cluster_nodes() == [Node("gpu_a10g_spot", 8, 1), Node("gpu_4xt4_spot", 48, 4)]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (None, r"gpu_a10g_spot\.resources=None is invalid: allowed values are a mapping such as \{CPU: 8, GPU: 1\}"),
        (
            {"CPU": 8, "GPU": 0.5},
            r"gpu_a10g_spot\.resources\.GPU=0\.5 is invalid: allowed values are whole numbers >= 0",
        ),
        ({"CPU": "eight"}, r"resources\.CPU='eight' is invalid"),
        ({"CPU": 0, "GPU": 1}, "no node type offers CPUs"),
    ],
)
def test_a_bad_node_shape_is_refused_naming_its_key(tmp_path, resources, message):
    node_type = {"node_config": {}} if resources is None else {"resources": resources}
    path = write_spec(tmp_path / "cluster.yaml", available_node_types={"gpu_a10g_spot": node_type})
    with pytest.raises(SpecError, match=message):
        packing.cluster_nodes(path)


def test_dry_run_says_how_the_default_ablation_packs_on_cluster_nodes(capsys, tmp_path, monkeypatch):
    argv = ["--dry-run", "--storage-path", str(tmp_path), "--address", "auto", "--gpus-per-trial", "0.0625"]
    assert main("ablate_gate", argv=argv) == 0
    out = capsys.readouterr().out
    assert "packing on cluster.yaml's node types" in out
    assert (
        "- gpu_a10g_spot (8 CPUs, 1 GPU): 8 trial processes, 8 seeds at once per GPU; limited by CPUs (1 CPU per trial)"
        in out
    )
    assert "--fuse-seeds packs more: 5 trial processes, 25 seeds at once per GPU" in out
    monkeypatch.setattr(packing, "CLUSTER_FILE", write_spec(tmp_path / "bad.yaml", available_node_types={}))
    assert main("ablate_gate", argv=argv) == 2
    assert "available_node_types is missing" in capsys.readouterr().err
