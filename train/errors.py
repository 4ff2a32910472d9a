"""Errors meant for people: what was wrong, where, and how to fix it."""


class TaawunError(Exception):
    """A problem with the user's input or setup; the CLI prints it without a traceback."""
