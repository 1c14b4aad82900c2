"""Trust and safety: audio watermark, voiceprint verification, PII redaction."""
