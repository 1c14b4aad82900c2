"""Tests of the server: OpenAI-compatible endpoints, realtime WebSocket, web page."""
