"""``duetto bank --text``: the agent from the command line."""

from __future__ import annotations

import json

import pytest

from duetto.cli import main


@pytest.fixture(scope="module", autouse=True)
def _needs_ml():
    pytest.importorskip("torch", reason="the bank NLU needs the 'ml' extra")


def test_text_mode_with_messages_as_json(tmp_path, capsys):
    db = tmp_path / "bank.sqlite3"
    args = ["bank", "--text", "--db", str(db), "--today", "2026-11-20", "--json"]
    for m in ("20481357", "blue harbour", "what's my savings balance?"):
        args += ["-m", m]
    assert main(args) == 0
    turns = json.loads(capsys.readouterr().out)
    assert turns[0]["user"] is None and "customer number" in turns[0]["agent"]
    assert turns[-1]["state"] == "ready" and "£5,000" in turns[-1]["agent"]
    assert db.exists()


def test_bad_arguments_give_one_line_errors(tmp_path, capsys):
    assert (
        main(["bank", "--text", "--today", "yesterday", "-m", "hi", "--db", str(tmp_path / "b.db")])
        == 2
    )
    assert "--today" in capsys.readouterr().err
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a database\n" * 200)
    assert main(["bank", "--text", "--db", str(not_db), "-m", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("duetto: error:") and "Traceback" not in err
