"""KServe V2 (Open Inference Protocol) types and codecs; knows no transport and no model."""
