"""Tests of DistillConfig loading, overrides and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from speechx.distill.config import DataSource, DistillConfig, load_config, save_config
from speechx.distill.errors import ConfigError

BASE = """
data:
  train: [data/a_train, {dir: data/b_train, fields: [text, text.en]}]
  dev: data/a_dev
  target_fields: [text]
loss:
  weights: {cosine: 1.0, infonce: 0.5}
max_steps: 10
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    p = tmp_path / "distill.yaml"
    p.write_text(BASE)
    return p


def test_load_yaml_with_sources_and_defaults(conf: Path) -> None:
    cfg = load_config(conf)
    assert cfg.data.train == [
        DataSource("data/a_train"),
        DataSource("data/b_train", fields=["text", "text.en"]),
    ]
    assert cfg.data.dev == [DataSource("data/a_dev")]  # a single string becomes a list
    assert cfg.loss.weights == {"cosine": 1.0, "infonce": 0.5}
    assert cfg.max_steps == 10 and cfg.epochs is None
    assert cfg.optim.schedule == "linear"
    assert cfg.eval_field == "text"


def test_overrides_are_coerced(conf: Path) -> None:
    cfg = load_config(
        conf,
        [
            "optim.lr_head=1e-3",  # YAML 1.1 reads this as a string
            "max_steps=100",
            "optim.grad_clip=null",
            "data.lang_alpha=0.3",
            "data.train=[x, y]",
            "optim.schedule=cosine",
            "model.overrides={pooling: attention}",
            "eval.field=text.en",
        ],
    )
    assert cfg.optim.lr_head == pytest.approx(1e-3) and isinstance(cfg.optim.lr_head, float)
    assert cfg.max_steps == 100
    assert cfg.optim.grad_clip is None
    assert cfg.data.lang_alpha == pytest.approx(0.3)
    assert [s.dir for s in cfg.data.train] == ["x", "y"]
    assert cfg.optim.schedule == "cosine"
    assert cfg.model.overrides == {"pooling": "attention"}
    assert cfg.eval_field == "text.en"


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("optim.lr_haed=1", "optim.lr_haed"),
        ("nonsense=1", "nonsense"),
        ("max_steps=abc", "max_steps"),
        ("optim.schedule=exp", "optim.schedule"),
        ("data.lang_alpha=2", "lang_alpha"),
        ("eval.primary_metric=bleu", "primary_metric"),
        ("loss.weights={l1: 1}", "l1"),
        ("max_steps", "key=value"),
        ("data.target_fields=[transcript]", "transcript"),
    ],
)
def test_bad_overrides_name_the_key(conf: Path, override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_config(conf, [override])


def test_unknown_key_in_yaml_names_full_path(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data: {train: [a], bogus: 1}\nmax_steps: 1\n")
    with pytest.raises(ConfigError, match=r"'data\.bogus'"):
        load_config(p)


def test_missing_file_and_no_stop_criterion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "c.yaml"
    p.write_text("data: {train: [a]}\n")
    with pytest.raises(ConfigError, match="max_steps or epochs"):
        load_config(p)


def test_save_and_reload_roundtrip(conf: Path, tmp_path: Path) -> None:
    cfg = load_config(conf, ["optim.warmup_steps=7"])
    out = save_config(cfg, tmp_path / "exp" / "config.yaml")
    assert yaml.safe_load(out.read_text())["optim"]["warmup_steps"] == 7
    assert load_config(out) == cfg
    assert isinstance(cfg, DistillConfig)


def test_recipe_section_is_ignored(tmp_path: Path) -> None:
    p = tmp_path / "demo.yaml"
    p.write_text("recipe: {nj: 4, speech_langs: nl}\ndata: {train: [a]}\nepochs: 2\n")
    cfg = load_config(p)
    assert cfg.epochs == 2 and cfg.data.train[0].dir == "a"


def test_device_is_a_config_key_checked_before_training() -> None:
    from speechx.asr.config import AsrConfig
    from speechx.distill.config import ConfigError, DistillConfig, config_from_dict

    assert DistillConfig().device == "auto" and AsrConfig().device == "auto"
    cfg = config_from_dict({"data": {"train": [{"dir": "d"}]}, "max_steps": 1, "device": "cpu"})
    assert cfg.validate().device == "cpu"
    cfg.device = "tpu"
    with pytest.raises(ConfigError, match="device must be auto, cpu or cuda, got 'tpu'"):
        cfg.validate()
