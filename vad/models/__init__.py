"""Stage 3, batches → scores: the anomaly model, its heads and checkpoints (no video, no UI imports)."""
from vad.models.anomaly import AnomalyModel, AnomalyOutput
from vad.models.config import ModelConfig

__all__ = ["AnomalyModel", "AnomalyOutput", "ModelConfig"]
