"""The command-line entry points, one thin module per command (``nas.cli.search:main`` is ``nas-search``)."""
