"""cluster.yaml against Ray's own autoscaler schema, offline (no cloud account, no boto3 calls).

``prepare_config`` fills Ray's defaults first (raw ``validate_config`` would fail on keys that Ray
itself adds). Both are private Ray APIs, which is fine while Ray is pinned in pyproject.toml.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_ray_schema(cluster):
    validate_config(prepare_config(copy.deepcopy(cluster)))


def test_cluster_yaml_shape(cluster):
    """The properties the sweeps rely on: CPU-only head, spot GPU workers, Ray pinned as in pyproject."""
    types = cluster["available_node_types"]
    assert types[cluster["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != cluster["head_node_type"]]
    assert workers and all(t["resources"]["GPU"] >= 1 for t in workers)
    assert all(t["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot" for t in workers)
    pinned = re.search(r'"ray\[tune\]==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert cluster["docker"]["image"].split(":")[1].startswith(pinned + "-")
    setup = " ".join(cluster["setup_commands"])
    assert "pip install" in setup and "scripts/setup_data.sh" in setup


@pytest.mark.parametrize(
    "where, typo",
    [
        ((), "max_workerz"),
        (("available_node_types", "gpu_a10g_spot"), "min_worker"),
        (("docker",), "imag"),
    ],
)
def test_misspelt_key_fails_schema(cluster, where, typo):
    bad = copy.deepcopy(cluster)
    node = bad
    for key in where:
        node = node[key]
    node[typo] = 1
    with pytest.raises(jsonschema.ValidationError, match=typo):
        validate_config(prepare_config(bad))


def test_token_auth_stays_on_and_the_dashboard_stays_private(cluster):
    """Ray 2.60 turns token authentication on by default only for ``ray.init`` clusters; a ``ray start``
    cluster runs without it unless ``RAY_AUTH_MODE=token`` is set on every node and every node has the
    token. The dashboard (job submission = running code) must not listen on a public interface."""
    assert "--env RAY_AUTH_MODE=token" in cluster["docker"]["run_options"]  # every Ray process in every container
    assert not {"head_run_options", "worker_run_options"} & set(cluster["docker"])  # ... none left out
    assert cluster["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"  # one token, on every node
    text = (ROOT / "cluster.yaml").read_text()
    assert "RAY_AUTH_MODE=disabled" not in text and "0.0.0.0" not in text
    head_starts = [c for c in cluster["head_start_ray_commands"] if "ray start" in c]
    assert head_starts and all("--dashboard-host=127.0.0.1" in c for c in head_starts)
    assert not any("dashboard-host" in c for c in cluster["worker_start_ray_commands"])  # workers run none
