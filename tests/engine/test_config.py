"""Settings: defaults, then TOML, then environment, then flags; bad names and types refused."""

import pytest

from duetto.config import load_settings
from duetto.errors import ConfigError


def test_precedence_file_env_flags(tmp_path):
    toml = tmp_path / "duetto.toml"
    toml.write_text("[llm]\nmax_tokens = 30\ntemperature = 0.5\n[turn]\nend_silence_ms = 700\n")
    env = {"DUETTO_LLM_MAX_TOKENS": "40", "DUETTO_TURN_BARGE_IN": "false"}
    s = load_settings(toml, {"llm.max_tokens": 50, "asr.model": None}, environ=env)
    assert s.llm.max_tokens == 50  # flag beats env beats file
    assert s.llm.temperature == 0.5  # from the file
    assert s.turn.end_silence_ms == 700
    assert s.turn.barge_in is False  # from the environment
    assert s.asr.model == "bundled"  # None flags leave defaults alone


def test_unknown_key_and_wrong_type(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text("[llm]\nmax_tokenz = 3\n")
    with pytest.raises(ConfigError, match="max_tokenz"):
        load_settings(toml, environ={})
    with pytest.raises(ConfigError, match="must be int"):
        load_settings(None, {"turn.end_silence_ms": "soon"}, environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[llm\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})
