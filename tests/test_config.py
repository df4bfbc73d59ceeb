"""Config: defaults, flat round trip, and one clear error per kind of bad input."""

import pytest

from pare_core.config import TrialConfig, inert_keys


def test_flat_round_trip_and_overrides():
    cfg = TrialConfig.from_flat({"gate.threshold": 0.6, "gate.selection": "threshold", "train.epochs": "7", "seed": 3})
    flat = cfg.to_flat()
    assert flat["gate.threshold"] == 0.6 and flat["gate.selection"] == "threshold"
    assert flat["train.epochs"] == 7 and isinstance(flat["train.epochs"], int)
    assert TrialConfig.from_flat(flat) == cfg
    assert TrialConfig.from_flat({}, base=cfg) == cfg


def test_defaults_are_the_papers():
    cfg = TrialConfig()
    assert cfg.gate.tau == 0.9 and cfg.source.size == 5000 and cfg.mix.cls_method == "twocls"
    assert (cfg.gate.replace_warm, cfg.gate.replace_after) == ("low", "high")
    assert cfg.curriculum.shape == "linear" and cfg.task.name == "digits" and cfg.backbone.name == "minilm"


def test_string_values_from_the_command_line_are_typed():
    cfg = TrialConfig.from_flat({"runtime.bf16": "false", "train.lr": "3e-4", "gate.warm_frac": "0.25"})
    assert cfg.runtime.bf16 is False and cfg.train.lr == 3e-4 and cfg.gate.warm_frac == 0.25


@pytest.mark.parametrize(
    "flat, fragments",
    [
        ({"gate.treshold": 0.5}, ["gate.treshold", "allowed keys", "gate.threshold"]),
        ({"nonsense": 1}, ["nonsense", "allowed keys"]),
        ({"train.epochs": "many"}, ["train.epochs", "'many'", "int"]),
        ({"gate.threshold": [0.5]}, ["gate.threshold", "float"]),
        ({"runtime.bf16": "maybe"}, ["runtime.bf16", "bool"]),
        ({"gate.threshold": 1.5}, ["gate.threshold", "1.5", "[0, 1]"]),
        ({"curriculum.start": -0.1}, ["curriculum.start", "-0.1", "[0, 1]"]),
        ({"curriculum.end": 2.0}, ["curriculum.end", "[0, 1]"]),
        ({"train.epochs": 0}, ["train.epochs", "0", ">= 1"]),
        ({"task.name": "imagenet"}, ["task.name", "'imagenet'", "digits", "dna"]),
        ({"backbone.name": "gpt5"}, ["backbone.name", "'gpt5'", "minilm", "efficientnet_lite0"]),
        ({"method": "magic"}, ["method", "'magic'", "finetune", "pare"]),
        ({"gate.selection": "best"}, ["gate.selection", "topk", "threshold", "random", "none"]),
        ({"curriculum.shape": "zigzag"}, ["curriculum.shape", "linear", "cosine"]),
        ({"finetune.body": "half"}, ["finetune.body", "full", "frozen", "layernorm"]),
        ({"train.lr": 0}, ["train.lr", "> 0"]),
        ({"mix.weight": -2}, ["mix.weight", "-1"]),
        ({"runtime.capture": "maybe"}, ["runtime.capture", "bool"]),
        ({"runtime.capture": True, "runtime.compile": True}, ["runtime.compile", "runtime.capture", "false"]),
    ],
)
def test_bad_input_names_key_value_and_allowed(flat, fragments):
    with pytest.raises(ValueError) as err:
        TrialConfig.from_flat(flat)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message


def test_validation_loads_no_data(monkeypatch, tmp_path):
    """Errors come before any data is touched: an empty data dir does not matter."""
    monkeypatch.setenv("PARE_DATA", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="gate.threshold"):
        TrialConfig.from_flat({"gate.threshold": 7})
    assert not (tmp_path / "empty").exists()


def test_inert_keys_are_those_the_run_ignores():
    flat = TrialConfig().to_flat()  # method=pare, gate.selection=topk
    assert {"gate.threshold", "mona.epochs", "lsg.weight", "align.lr", "finetune.body_lr"} <= inert_keys(flat)
    assert not {"gate.selection", "gate.tau", "curriculum.shape", "mix.weight", "train.lr"} & inert_keys(flat)
    assert "gate.threshold" not in inert_keys({**flat, "gate.selection": "threshold"})
    none = inert_keys({**flat, "gate.selection": "none"})  # no mixing: the gate, curriculum and mix keys idle
    assert {"gate.threshold", "gate.tau", "curriculum.shape", "mix.weight"} <= none and "gate.selection" not in none
    orca = inert_keys({**flat, "method": "orca", "align.epochs": 10})
    assert "gate.selection" in orca and not {"align.epochs", "align.lr"} & orca
    assert "align.epochs" not in inert_keys({**flat, "align.epochs": 3})  # ORCA + PaRe
    assert inert_keys({"gate.threshold": 0.3}) == set()  # conditions on missing keys count as met
    random = inert_keys({**flat, "gate.selection": "random"})  # random positions ignore the gate's scores
    assert {"gate.noise", "gate.warm_frac", "gate.pairing", "gate.replace_after"} <= random
    assert not {"curriculum.shape", "mix.weight"} & random
    assert "curriculum.levels" in inert_keys(flat) and "curriculum.levels" not in inert_keys(
        {**flat, "curriculum.shape": "step"}
    )
