"""duetto: streaming voice dialogue that fuses LLMs with speech, on a laptop CPU."""

__version__ = "0.1.0"
