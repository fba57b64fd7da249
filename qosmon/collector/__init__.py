"""The collector: an aiohttp service where probes, the commerce platform and
the warehouses send their data.

``app`` assembles the application, ``request`` holds the plumbing every
handler uses (auth, body, parsing, checks, errors), and ``routes/`` has one
module per resource; ``routes/__init__.py`` says how to add one.
"""
