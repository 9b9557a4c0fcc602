"""Embed a `capstan.toml` into a component as the `capstan-manifest` custom section (what
the Rust SDK's macro does), so one `.wasm` carries its manifest:

    python guest-sdk/python/capstan_embed.py component.wasm capstan.toml -o plugin.wasm
"""

import argparse
import sys

SECTION = b"capstan-manifest"


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def embed(component: bytes, manifest: bytes) -> bytes:
    if not component.startswith(b"\0asm"):
        raise ValueError("not a WebAssembly file")
    payload = leb128(len(SECTION)) + SECTION + manifest
    return component + b"\x00" + leb128(len(payload)) + payload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("component")
    parser.add_argument("manifest")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    with open(args.component, "rb") as f:
        component = f.read()
    with open(args.manifest, "rb") as f:
        manifest = f.read()
    try:
        out = embed(component, manifest)
    except ValueError as error:
        print(f"{args.component}: {error}", file=sys.stderr)
        return 1
    with open(args.output, "wb") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
