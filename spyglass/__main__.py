"""``python -m spyglass``: the same entry point as the ``spyglass`` command."""

from spyglass.client import main

main()
