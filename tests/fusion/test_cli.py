import json

import numpy as np

from duetto.audio import write_wav
from duetto.cli import main


def test_style_command_names_the_style_and_renders_it(tmp_path, capsys):
    out = tmp_path / "sorry.wav"
    assert (
        main(["fusion", "style", "I'm so sorry, the payment failed.", "--json", "-o", str(out)])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "apologetic" and data["pitch_st"] < 0 and out.stat().st_size > 10_000


def test_cues_and_eot_commands_on_tts_speech(tmp_path, capsys, speak):
    path = tmp_path / "turn.wav"
    audio = np.concatenate([speak("I would like to check my balance."), np.zeros(8000, np.float32)])
    write_wav(path, audio, 16_000)
    assert (
        main(
            [
                "fusion",
                "cues",
                str(path),
                "--transcript",
                "I would like to check my balance",
                "--json",
            ]
        )
        == 0
    )
    cues = json.loads(capsys.readouterr().out)
    assert cues["words"] == 7 and cues["syllables_per_s"] > 1
    assert (
        main(
            [
                "fusion",
                "eot",
                str(path),
                "--transcript",
                "I would like to check my balance",
                "--json",
            ]
        )
        == 0
    )
    eot = json.loads(capsys.readouterr().out)
    assert 0 <= eot["probability"] <= 1 and 100 <= eot["wait_ms"] <= 3000


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["fusion", "cues", str(tmp_path / "missing.wav")]) == 2
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16_000, np.float32), 16_000)
    assert main(["fusion", "eot", str(silent), "--transcript", "hi"]) == 2
    err = capsys.readouterr().err
    assert "no speech" in err and "Traceback" not in err
