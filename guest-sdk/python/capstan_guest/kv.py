"""Key-value storage (capability `kv`): the plugin's own namespace."""

from typing import Optional

from .errors import call


def get(key: str) -> Optional[bytes]:
    from wit_world.imports import kv

    return call(kv.get, key)


def set(key: str, value: bytes) -> None:
    from wit_world.imports import kv

    call(kv.set, key, value)


def delete(key: str) -> bool:
    from wit_world.imports import kv

    return call(kv.delete, key)


def increment(key: str, delta: int = 1) -> int:
    from wit_world.imports import kv

    return call(kv.increment, key, delta)
