"""Durable state: the ``Store`` protocol (``base``) and its embedded SQLite backend (``sqlite``)."""
