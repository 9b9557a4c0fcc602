"""The host's typed errors (`capstan:plugin/types.error`) as one Python exception."""


class CapstanError(Exception):
    """A host call failed. `kind` is the WIT case: `denied`, `not-found`,
    `quota-exceeded`, `invalid-input`, `timeout`, `too-large` or `internal`."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    @staticmethod
    def from_wit(error) -> "CapstanError":
        # Error_Denied -> denied, Error_QuotaExceeded -> quota-exceeded, ...
        name = type(error).__name__.removeprefix("Error_")
        kind = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
        return CapstanError(kind, getattr(error, "value", "") or "")

    def to_wit(self):
        """This error as the WIT variant, for returning from an export."""
        from wit_world.imports import types

        cases = {
            "denied": types.Error_Denied,
            "quota-exceeded": types.Error_QuotaExceeded,
            "invalid-input": types.Error_InvalidInput,
            "too-large": types.Error_TooLarge,
            "internal": types.Error_Internal,
        }
        if self.kind == "not-found":
            return types.Error_NotFound()
        if self.kind == "timeout":
            return types.Error_Timeout()
        return cases.get(self.kind, types.Error_Internal)(self.detail or self.kind)


def call(function, *args):
    """Call a host function, turning its `Err` into `CapstanError`."""
    from componentize_py_types import Err

    try:
        return function(*args)
    except Err as error:
        raise CapstanError.from_wit(error.value) from None
