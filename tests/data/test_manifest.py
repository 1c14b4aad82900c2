"""Manifests: good rows parse, bad lines are reported with their number and skipped."""

import json

import pytest

from duetto.data.manifest import read_manifest, subset, write_manifest
from duetto.errors import DuettoError


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_rows_resolving_audio_relative_to_the_manifest(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    m = read_manifest(
        _write(
            tmp_path / "m.jsonl",
            [
                json.dumps(
                    {
                        "id": "u1",
                        "audio": "a.wav",
                        "text": "HI",
                        "speaker": "s",
                        "age": 9,
                        "gender": "f",
                        "duration": 1.5,
                        "accent": "zh",
                    }
                )
            ],
        )
    )
    (u,) = m.utterances
    assert u.audio == tmp_path / "a.wav" and u.age == 9 and u.gender == "f" and u.line == 1
    assert u.extra == {"accent": "zh"}
    assert u.to_row(tmp_path)["audio"] == "a.wav" and u.to_row(tmp_path)["accent"] == "zh"


def test_bad_lines_are_problems_with_line_numbers(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    m = read_manifest(
        _write(
            tmp_path / "m.jsonl",
            [
                '{"id": "ok", "audio": "a.wav", "text": "A"}',
                "{broken",
                '{"audio": "a.wav"}',
                '{"id": "gone", "audio": "missing.wav"}',
                '{"id": "ok", "audio": "a.wav"}',
                "",
                '{"id": "age", "audio": "a.wav", "age": "old"}',
            ],
        )
    )
    assert [u.id for u in m] == ["ok"]
    assert [p.line for p in m.problems] == [2, 3, 4, 5, 7]
    messages = " | ".join(map(str, m.problems))
    for needle in (
        "not valid JSON",
        "missing field(s): id",
        "audio file not found",
        "duplicate id",
        "age must be a number",
    ):
        assert needle in messages


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DuettoError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_subset_spreads_over_speakers_and_keeps_file_order(shared_data):
    m = read_manifest(shared_data / "speechocean762" / "dev.jsonl")
    part = subset(m, 40)
    speakers = {u.speaker for u in part}
    assert len(part) == 40 and len(speakers) == len(m.speakers()) == 20
    order = [u.id for u in m]
    assert [order.index(u.id) for u in part] == sorted(order.index(u.id) for u in part)


def test_write_manifest_round_trips(tmp_path):
    rows = [{"id": "a", "audio": "x.wav", "text": "é"}]
    path = write_manifest(tmp_path / "o" / "m.jsonl", rows)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
