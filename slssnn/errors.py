"""The one user-facing error type: the CLI prints its message on one line and exits 2."""


class SlssnnError(Exception):
    """Bad input (file, layer, field, option) described in one line that names it."""
