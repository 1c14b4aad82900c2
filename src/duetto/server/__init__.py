"""The duetto server: OpenAI-compatible speech endpoints, realtime voice sessions, a web page.

Needs the optional extra ``duetto[server]``. Build an app with :func:`duetto.server.app.create_app`
or run ``duetto serve``.
"""
