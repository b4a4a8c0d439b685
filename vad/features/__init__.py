"""Stage 1, video → features: decoding, the CLIP backbone, multi-level extraction and the feature files."""
