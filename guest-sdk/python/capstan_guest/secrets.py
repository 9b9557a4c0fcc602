"""Secrets (capability `secrets`): only the names the manifest declares and the policy grants."""

from .errors import call


def get(name: str) -> str:
    from wit_world.imports import secrets

    return call(secrets.get, name)
