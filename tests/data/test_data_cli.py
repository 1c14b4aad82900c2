"""`duetto data ...`: augment, dtw and align from the command line, JSON and human output."""

import json

import numpy as np

from duetto.audio import write_wav
from duetto.cli import main


def test_augment_cli_counts_skipped_lines(tmp_path, shared_data, capsys):
    row = json.loads((shared_data / "speechocean762" / "dev.jsonl").read_text().splitlines()[1])
    row["audio"] = str(shared_data / "speechocean762" / row["audio"])
    (tmp_path / "m.jsonl").write_text(json.dumps(row) + "\n{bad\n")
    code = main(
        [
            "data",
            "augment",
            str(tmp_path / "m.jsonl"),
            str(tmp_path / "o"),
            "--noise",
            "brown",
            "--snr",
            "10",
            "--tempo",
            "1.1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr()
    assert code == 0 and "wrote 1 utterance(s)" in out.out and "1 line(s) skipped" in out.out
    assert "m.jsonl:2: not valid JSON" in out.err
    assert (
        main(["data", "augment", str(tmp_path / "m.jsonl"), str(tmp_path / "o"), "--speed", "3"])
        == 2
    )
    assert "sane range" in capsys.readouterr().err


def test_dtw_and_align_cli(tmp_path, speak, capsys):
    a = speak("Kate loves China")
    write_wav(tmp_path / "a.wav", np.concatenate([np.zeros(4000, np.float32), a]), 16_000)
    write_wav(tmp_path / "b.wav", speak("Kate loves China", speed=0.8), 16_000)
    assert (
        main(
            [
                "data",
                "dtw",
                str(tmp_path / "a.wav"),
                str(tmp_path / "b.wav"),
                "--json",
                "--png",
                str(tmp_path / "d.png"),
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert 0 < d["distance"] < 0.5 and d["offset_a"] >= 0.2 and (tmp_path / "d.png").is_file()
    args = [
        "data",
        "align",
        str(tmp_path / "a.wav"),
        "--text",
        "Kate loves China",
        "--srt",
        str(tmp_path / "a.srt"),
    ]
    assert main(args + ["--json"]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    assert [w["word"] for w in words] == ["kate", "loves", "china"] and words[0]["start"] >= 0.2
    assert main(args) == 0
    assert "kate" in capsys.readouterr().out and (tmp_path / "a.srt").is_file()
    assert main(["data", "align", str(tmp_path / "missing.wav"), "--text", "x"]) == 2
    assert "not found" in capsys.readouterr().err
