"""The ``duetto tutor`` commands end to end, including their errors."""

import json

from duetto.cli import main


def test_grammar_json(capsys):
    assert main(["tutor", "grammar", "She have two cat.", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["corrected"] != data["text"]
    assert data["edits"] and all(e["explanation"] for e in data["edits"])


def test_grammar_lets_gemma_judge_unsure_edits_unless_fast(capsys):
    text = "We need a person who are capable of all sorts of works."
    assert main(["tutor", "grammar", text, "--json"]) == 0
    judged = json.loads(capsys.readouterr().out)
    # The n-gram model alone is unsure of both edits and makes neither; Gemma approves them.
    assert judged["corrected"] == "We need a person who is capable of all sorts of work."
    assert main(["tutor", "grammar", text, "--json", "--fast"]) == 0
    assert json.loads(capsys.readouterr().out)["corrected"] == text
    assert main(["tutor", "grammar", "I have traveled in a group without tour guide."]) == 0
    assert "(insert) → a:" in capsys.readouterr().out


def test_score_json_and_html(tmp_path, capsys, ocean):
    audio = ocean / "audio" / "014200011.flac"
    page = tmp_path / "r.html"
    code = main(["tutor", "score", "--audio", str(audio), "--text", "I expect this to be as nice",
                 "--html", str(page), "--json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["utterance"]) == {"accuracy", "completeness", "fluency", "prosody", "total"}
    assert data["words"][1]["word"] == "EXPECT" and data["words"][1]["phones"]
    assert "pause_count" in data["fluency"]
    assert "<table>" in page.read_text()


def test_score_free_speech_adds_grammar(capsys, ocean):
    audio = ocean / "audio" / "014200011.flac"
    assert main(["tutor", "score", "--audio", str(audio), "--free", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["reference"] == data["transcript"] and data["words"]
    assert "corrected" in data["grammar"]


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["tutor", "score", "--audio", str(tmp_path / "none.wav"), "--text", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("duetto: error:") and "Traceback" not in err
    assert main(["tutor", "report", "--learner", "nobody", "-o", str(tmp_path / "r.html"),
                 "--db", str(tmp_path / "p.sqlite")]) == 2  # fmt: skip
    assert "no learner named" in capsys.readouterr().err
