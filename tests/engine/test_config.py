"""Settings: defaults, then TOML, then environment, then flags; bad names and types refused."""

import dataclasses

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


def test_values_take_the_fields_types(tmp_path):
    # a TOML list, an environment string and an optional number all come out as the field's
    # type; settings stay hashable, as the ASR cache needs (load_asr keys on them)
    toml = tmp_path / "noisy.toml"
    toml.write_text("[asr]\nnoisy_speeds = [0.95, 1.05]\nfilter_below_snr_db = 20\n")
    env = {"DUETTO_ASR_MIN_WORD_LEVEL_DB": "-15", "DUETTO_ASR_NOISY_BEAM_SIZE": "5"}
    s = load_settings(toml, environ=env)
    assert s.asr.noisy_speeds == (0.95, 1.05)
    assert s.asr.filter_below_snr_db == 20.0 and isinstance(s.asr.filter_below_snr_db, float)
    assert s.asr.min_word_level_db == -15.0 and s.asr.noisy_beam_size == 5
    hash(dataclasses.astuple(s.asr))
    s = load_settings(None, environ={"DUETTO_ASR_NOISY_SPEEDS": "0.9, 1.1"})
    assert s.asr.noisy_speeds == (0.9, 1.1)
    s = load_settings(None, environ={"DUETTO_ASR_NOISY_SPEEDS": "none"})
    assert s.asr.noisy_speeds is None
    with pytest.raises(ConfigError, match="noisy_speeds.*fast"):
        load_settings(None, environ={"DUETTO_ASR_NOISY_SPEEDS": "0.9,fast"})
    with pytest.raises(ConfigError, match="noisy_beam_size"):
        load_settings(None, environ={"DUETTO_ASR_NOISY_BEAM_SIZE": "wide"})
