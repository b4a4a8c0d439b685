"""tests/apps uses the session fixtures ``trained_inputs`` and ``trained_model`` of ``tests/conftest.py``."""
