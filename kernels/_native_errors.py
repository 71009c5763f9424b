"""Turn a C status code from csrc into a Python exception naming the op."""

CF_OK = 0
_MESSAGES = {
    -1: "null pointer",
    -2: "bad shape",
    -3: "region out of range",
    -4: "array too small for the given shape",
    -5: "out of memory",
    -6: "misaligned pointer",
}


def check_status(status: int, op: str, detail: str = "") -> None:
    """Raise ValueError if ``status`` is a C error code."""
    if status == CF_OK:
        return
    msg = _MESSAGES.get(status, f"unknown status {status}")
    raise ValueError(f"{op}: C layer refused the call ({msg}){': ' + detail if detail else ''}")
