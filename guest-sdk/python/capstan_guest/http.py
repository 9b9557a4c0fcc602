"""Outbound HTTP (capability `http`): only hosts the manifest and the policy both allow."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .errors import call


@dataclass
class HttpResponse:
    status: int
    headers: List[Tuple[str, str]]
    body: bytes


def fetch(url: str, method: str = "GET", body: Optional[bytes] = None,
          headers: Optional[List[Tuple[str, str]]] = None,
          timeout_ms: Optional[int] = None) -> HttpResponse:
    from wit_world.imports import http

    request = http.Request(getattr(http.Method, method.upper()), url, headers or [],
                           body, timeout_ms, None)
    answer = call(http.send, request)
    return HttpResponse(answer.status, list(answer.headers), bytes(answer.body))
