"""Zero-shot scoring: prompt similarities rank the snippets that look like an anomaly prompt first."""
import numpy as np
import pytest

from vad.engine.inference import score_features
from vad.engine.zeroshot import zero_shot_loaded, zero_shot_model
from vad.features.store import VideoFeatures, VideoMeta
from vad.models.config import GraphTermsConfig

D = 32


def planted_video(seed=0, n=40, planted=(12, 13, 14, 15)):
    """Prompt embeddings (normal, fire, fight) and a video whose ``planted`` snippets point at "fight"."""
    rng = np.random.default_rng(seed)
    text = np.linalg.qr(rng.normal(size=(D, 3)))[0].T.astype(np.float32)  # orthonormal prompt directions
    clip = text[0] + 0.6 * rng.normal(size=(n, D)) / np.sqrt(D)
    clip[list(planted)] = text[2] + 0.6 * rng.normal(size=(len(planted), D)) / np.sqrt(D)
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    return text, VideoFeatures(clip, VideoMeta(name="v", snippet_len=4, num_frames=4 * n)), set(planted)


@pytest.mark.parametrize("graph", [False, True])
def test_zero_shot_ranks_the_planted_snippets_first(graph):
    text, video, planted = planted_video()
    model = zero_shot_model(text, graph_terms=GraphTermsConfig(enabled=graph))
    scores = score_features(model, video, text, ("clip",))
    top = set(np.argsort(-scores.snippets)[: len(planted)].tolist())
    assert top == planted
    assert scores.snippets[list(planted)].min() > 0.5 > np.delete(scores.snippets, list(planted)).max()
    assert (scores.best_prompt[list(planted)] == 2).all()  # segments name the "fight" prompt


def test_zero_shot_model_needs_prompts_and_no_centring():
    with pytest.raises(ValueError, match="K >= 2"):
        zero_shot_model(np.ones((1, D), np.float32))
    loaded = zero_shot_loaded(planted_video()[0], ["normal", "fire", "fight"])
    assert loaded.model.config.center is False and loaded.model.num_parameters() == 0
    assert loaded.levels == ("clip",) and loaded.info["zero_shot"]
