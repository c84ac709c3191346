"""scikit-learn models are served as ONNX: a ``.skops`` upload is converted once, at upload.

maas never unpickles an upload. A skops file is a zip of JSON and arrays whose loader
builds only the types it is told to trust; we trust skops' defaults plus a fixed list of
scikit-learn internals (tree and neighbour structures), refuse anything else, and
convert the model with skl2onnx so that it runs in the ONNX runtime like any other.

Example::

    lineage = convert_skops_to_onnx(Path("model.skops"), Path("model.onnx"))
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Final

from maas.errors import InvalidArtifactError, describe
from maas.runtimes.safety import check_archive, refuse_executable_formats
from maas.store.digest import sha256_of_stream

__all__ = ["TRUSTED_SKOPS_TYPES", "convert_skops_to_onnx"]

#: Types skops does not trust by default that a fitted scikit-learn estimator holds.
#: They are compiled data structures with no code of the user's inside.
TRUSTED_SKOPS_TYPES: Final[frozenset[str]] = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    }
)

_MISSING_EXTRA: Final = (
    "skops uploads need scikit-learn, skl2onnx and skops: pip install 'maas[sklearn]'"
)


def _load_trusted(path: Path) -> Any:
    """The estimator in ``path``, built only from trusted types."""
    import skops.io  # type: ignore[import-untyped]  # no type hints shipped

    if not zipfile.is_zipfile(path):
        refuse_executable_formats(path)  # names a pickle as such
        raise InvalidArtifactError("not a skops file (skops.io.dump writes one)")
    check_archive(path)  # before skops inflates a member
    try:
        untrusted: list[str] = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several types for a zip that is not its own
        raise InvalidArtifactError(f"not a readable skops file: {describe(exc)}") from exc
    refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
    if refused:
        raise InvalidArtifactError(
            f"the skops file holds types maas does not trust: {', '.join(refused)}",
            {"untrusted_types": refused},
        )
    try:
        return skops.io.load(path, trusted=untrusted)
    except Exception as exc:  # a damaged file fails in many ways
        raise InvalidArtifactError(f"the skops file did not load: {describe(exc)}") from exc


def _to_onnx(model: Any) -> tuple[bytes, str]:
    """ONNX bytes for a fitted estimator, with one FP32 input ``input`` [-1, n_features]."""
    from skl2onnx import to_onnx  # type: ignore[import-untyped]  # no type hints shipped
    from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int):
        raise InvalidArtifactError(
            f"{type(model).__name__} is not a fitted scikit-learn estimator (no n_features_in_)"
        )
    options: dict[Any, Any] | None = None
    if is_classifier(model):
        final = model.steps[-1][1] if isinstance(model, Pipeline) else model
        options = {id(final): {"zipmap": False}}  # plain label and probabilities tensors
    try:
        onnx_model = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
        )
    except Exception as exc:  # skl2onnx raises RuntimeError/NotImplementedError/...
        raise InvalidArtifactError(
            f"skl2onnx cannot convert {type(model).__name__}: {describe(exc)}"
        ) from exc
    return onnx_model.SerializeToString(), type(model).__name__


def convert_skops_to_onnx(path: Path, out_path: Path) -> dict[str, Any]:
    """Write the ONNX form of the skops model at ``path`` to ``out_path``.

    Returns lineage extras: the source format, the original file's sha256, the estimator
    and the scikit-learn and skl2onnx versions that made the conversion.
    """
    try:
        import skl2onnx
        import sklearn
        import skops
    except ImportError as exc:
        raise InvalidArtifactError(_MISSING_EXTRA) from exc
    model = _load_trusted(path)
    data, estimator = _to_onnx(model)
    out_path.write_bytes(data)
    with path.open("rb") as file:
        original_sha256, _ = sha256_of_stream(file)
    return {
        "source": "skops",
        "original_sha256": original_sha256,
        "estimator": estimator,
        "sklearn_version": sklearn.__version__,
        "skl2onnx_version": skl2onnx.__version__,
        "skops_version": skops.__version__,
    }
