"""An MLServer runtime that runs an ONNX model with ONNX Runtime (runs inside .venv-mlserver).

Referenced from model-settings.json as ``runtime.OnnxRuntimeModel``; the file is copied next
to each model-settings.json, which MLServer puts on the import path.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntimeModel(MLModel):  # type: ignore[misc]  # mlserver is not typed here
    async def load(self) -> bool:
        uri = self.settings.parameters.uri
        self._session = ort.InferenceSession(uri, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        array = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        (result,) = self._session.run([self._output], {self._input: array})
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(self._output, result)],
        )
