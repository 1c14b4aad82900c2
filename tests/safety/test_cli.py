"""``duetto safety ...`` end to end: human output, --json, one-line errors with exit 2."""

from __future__ import annotations

import json

from duetto.audio import write_wav
from duetto.cli import main


def test_mark_then_detect(tmp_path, capsys):
    from duetto.config import TTSSettings
    from duetto.tts import load_tts, synthesize

    # Unmarked voice (the command adds the mark), the same audio every run; about 4 s, as 16 payload
    # bits from one or two seconds are right only ~80-98% of the time (docs/trust.md).
    tts = load_tts(TTSSettings(watermark=False, variation=0.0))
    speech = synthesize(
        tts, "Thanks for calling the bank. How can I help you today? I can check a balance."
    )
    assert len(speech) > 3.5 * tts.sample_rate
    plain = write_wav(tmp_path / "plain.wav", speech, tts.sample_rate)
    marked = tmp_path / "marked.wav"
    assert (
        main(["safety", "mark", str(plain), str(marked), "--model-id", "7", "--time-bucket", "99"])
        == 0
    )
    capsys.readouterr()
    assert main(["safety", "detect", str(marked), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["found"] and data["payload"] == {"model_id": 7, "time_bucket": 99}
    assert main(["safety", "detect", str(plain)]) == 0
    assert "no watermark" in capsys.readouterr().out


def test_detect_bad_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert main(["safety", "detect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("duetto: error:") and len(err.strip().splitlines()) == 1


def test_redact_command(capsys):
    assert main(["safety", "redact", "call 07700 900123 at 10:30"]) == 0
    assert capsys.readouterr().out.strip() == "call [PHONE] at 10:30"
    assert main(["safety", "redact", "--json", "mail a@b.com"]) == 0
    assert json.loads(capsys.readouterr().out)["spans"][0]["kind"] == "EMAIL"


def test_verify_unknown_name(tmp_path, capsys):
    wav = write_wav(tmp_path / "x.wav", [0.0] * 16_000, 16_000)
    code = main(["safety", "verify", "nobody", str(wav), "--store", str(tmp_path / "vp.sqlite")])
    assert code == 2
    assert "no voiceprint named 'nobody'" in capsys.readouterr().err
