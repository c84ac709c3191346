"""``python -m maas.jobs.validate``: check a JSON spec from stdin, answer one JSON line.

Run by ``maas.jobs.submission`` in a child process; prints ``{"ok": true}`` or
``{"error": {"message": ..., "details": ...}}`` and always exits 0 when it could decide.
A check that fails unexpectedly (a bug, or the user's factory raising on import) is a
refusal too, in words that carry no traceback, path or file content; the traceback goes
to stderr, which the server logs.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any, Final

from maas.errors import InvalidInputError
from maas.training.spec import parse_spec, validate_spec

_UNEXPECTED: Final = (
    "spec: checking the dataset and the model failed unexpectedly (the server's log says why)"
)


def main() -> None:
    verdict: dict[str, Any]
    try:
        validate_spec(parse_spec(json.loads(sys.stdin.read())))
    except InvalidInputError as error:
        verdict = {"error": {"message": error.message, "details": error.details}}
    except Exception:
        traceback.print_exc()
        verdict = {"error": {"message": _UNEXPECTED, "details": {"field": "spec"}}}
    else:
        verdict = {"ok": True}
    print(json.dumps(verdict))


if __name__ == "__main__":
    main()
