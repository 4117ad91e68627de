from __future__ import annotations

from pathlib import Path

import pytest
from livepuppet.engine.config import EngineConfig, load_config, parse_override, preset_names
from livepuppet.errors import ConfigError


def test_presets_ship_and_load() -> None:
    names = preset_names()
    assert {"cpu-realtime", "cpu-fast", "expressive"} <= set(names)
    for name in names:
        assert isinstance(load_config(name), EngineConfig)
    assert load_config("cpu-fast").render.crop_size == 256
    assert load_config("expressive").retarget.mode == "landmarks"


def test_overrides_are_typed() -> None:
    cfg = load_config("cpu-realtime", ["render.crop_size=256", "retarget.mouth_gain=1.5", "retarget.mode=landmarks"])
    assert cfg.render.crop_size == 256
    assert cfg.retarget.mouth_gain == 1.5
    assert cfg.retarget.mode == "landmarks"
    assert parse_override("composite.feather=0.2") == (["composite", "feather"], 0.2)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("render.crop_sise=256", "unknown config key render.'crop_sise'"),
        ("rendr.crop_size=256", "unknown config key 'rendr'"),
        ("render.crop_size=big", "must be an integer"),
        ("render.crop_size=10", "out of range"),
        ("retarget.mode=magic", "retarget.mode"),
        ("retarget.eye_retargeting=1", "true or false"),
        ("nonsense", "section.key=value"),
    ],
)
def test_bad_values_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config("cpu-realtime", [override])


def test_toml_file_and_unknown_preset(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[render]\ncrop_size = 384\n[output]\nfps = 30\n")
    cfg = load_config(path)
    assert cfg.render.crop_size == 384 and cfg.output.fps == 30.0
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("no-such-preset")
    (tmp_path / "bad.toml").write_text("[render\n")
    with pytest.raises(ConfigError):
        load_config(tmp_path / "bad.toml")
