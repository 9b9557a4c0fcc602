"""HTTP routes: the request a route gets and the response it returns."""

import json
from dataclasses import dataclass, field
from typing import List, Optional, Tuple
from urllib.parse import parse_qs


@dataclass
class Request:
    """An inbound request below the plugin's prefix."""

    method: str
    path: str
    query: str
    headers: List[Tuple[str, str]]
    body: bytes

    def query_param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = parse_qs(self.query).get(name)
        return values[0] if values else default

    def header(self, name: str) -> Optional[str]:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a route returns."""

    status: int = 200
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @staticmethod
    def text(status: int, text: str) -> "Response":
        return Response(status, [("content-type", "text/plain; charset=utf-8")], text.encode())

    @staticmethod
    def json(status: int, value) -> "Response":
        return Response(status, [("content-type", "application/json")], json.dumps(value).encode())
