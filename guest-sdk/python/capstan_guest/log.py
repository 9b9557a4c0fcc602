"""Logging into the host's log, tagged with the plugin and the call."""


def _write(level: str, message: str) -> None:
    from wit_world.imports import log

    log.write(getattr(log.Level, level), message)


def debug(message: str) -> None:
    _write("DEBUG", message)


def info(message: str) -> None:
    _write("INFO", message)


def warn(message: str) -> None:
    _write("WARN", message)


def error(message: str) -> None:
    _write("ERROR", message)
