"""``python -m maas.jobs.validate``: check a JSON job from stdin, answer one JSON line.

The job is ``{"spec": ..., "parent": ...}``: a job spec of any kind and, for an
optimisation, the facts about its parent version the server resolved
(``maas.optimize.parents.Parent``). Run by ``maas.jobs.submission`` in a child process;
prints ``{"ok": true}`` or ``{"error": {"message": ..., "details": ...}}`` and always exits 0
when it could decide.
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
from maas.jobs.kinds import TrainSpec, parse_job
from maas.optimize.parents import Parent
from maas.training.language.spec import LanguageModelSpec
from maas.training.spec import validate_spec

_UNEXPECTED: Final = (
    "spec: checking the dataset and the model failed unexpectedly (the server's log says why)"
)


def _validate(job: dict[str, Any]) -> None:
    spec = parse_job(job["spec"])
    if isinstance(spec, TrainSpec):
        validate_spec(spec)
        return
    if isinstance(spec, LanguageModelSpec):
        from maas.training.language.pipeline import validate_language_model

        validate_language_model(spec)
        return
    from maas.optimize.validation import validate_optimization  # torch: only when needed

    validate_optimization(spec, Parent.from_dict(job["parent"]))


def main() -> None:
    verdict: dict[str, Any]
    try:
        _validate(json.loads(sys.stdin.read()))
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
