"""Spoken-English tutor: pronunciation scoring, grammar feedback, practice and learner reports."""
