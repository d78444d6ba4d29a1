"""Exceptions that the command line turns into exit codes."""


class BenchError(Exception):
    """A problem with the user's input: shown as one message, exit code 2."""
