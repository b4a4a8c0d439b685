"""The synthetic anomaly benchmark: its plan and layout (``benchmark``) and the OpenCV renderer (``generate``)."""
