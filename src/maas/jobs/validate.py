"""``python -m maas.jobs.validate``: check a JSON spec from stdin, answer one JSON line.

Run by ``maas.jobs.submission`` in a child process; prints ``{"ok": true}`` or
``{"error": {"message": ..., "details": ...}}`` and always exits 0 when it could decide.
"""

from __future__ import annotations

import json
import sys

from maas.errors import InvalidInputError
from maas.training.spec import parse_spec, validate_spec


def main() -> None:
    try:
        validate_spec(parse_spec(json.loads(sys.stdin.read())))
    except InvalidInputError as error:
        print(json.dumps({"error": {"message": error.message, "details": error.details}}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    main()
