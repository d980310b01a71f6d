"""The ``liqmap`` command: the top floor. Parses arguments and calls into jobs, api, engine and
maps; nothing imports it."""
