"""Settings the operator set (capability `config`), as JSON text per key."""

import json
from typing import Any, Optional

from .errors import call


def get(key: str) -> Optional[Any]:
    """The value of setting `key`, decoded from JSON, or None when unset."""
    from wit_world.imports import config

    text = call(config.get, key)
    return None if text is None else json.loads(text)
