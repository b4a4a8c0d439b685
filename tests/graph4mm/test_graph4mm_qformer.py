"""MMQFormer: shapes, widths, padding invariance, cross-attention map, gradients."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graph4mm import MMQFormer, MMQFormerConfig, MMQFormerOutput
from graph4mm.qformer import MultiHeadAttention

CFG = MMQFormerConfig(dim=16, visual_dim=12, text_dim=10, heads=4, layers=2, num_queries=3)


def model(seed: int = 0) -> MMQFormer:
    torch.manual_seed(seed)
    return MMQFormer(CFG).eval()


def inputs(b: int, n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, CFG.visual_dim, generator=gen), torch.randn(b, k, CFG.text_dim, generator=gen)


def test_output_shapes_and_cross_attention_is_a_distribution_over_visual_nodes():
    visual, text = inputs(2, 5, 4, 0)
    out = model()(visual, text)
    assert isinstance(out, MMQFormerOutput)
    assert out.query_tokens.shape == (2, 3, 16) and out.cross_attention.shape == (2, 3, 5)
    assert torch.allclose(out.cross_attention.sum(-1), torch.ones(2, 3), atol=1e-5)
    assert "num_queries=3" in model().extra_repr()


def test_caller_supplied_queries_replace_the_learnable_ones():
    visual, text = inputs(2, 5, 4, 0)
    m = model()
    q = torch.randn(7, 16)
    assert m(visual, text, queries=q).query_tokens.shape == (2, 7, 16)
    own = m(visual, text, queries=m.queries.detach()).query_tokens
    assert torch.allclose(own, m(visual, text).query_tokens)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 5), pad_v=st.integers(0, 3), pad_t=st.integers(0, 3),
       seed=st.integers(0, 10_000))
def test_padded_visual_and_text_tokens_do_not_change_outputs(n, k, pad_v, pad_t, seed):
    m = model(seed % 3)
    visual, text = inputs(2, n, k, seed)
    ref = m(visual, text)
    big_v, big_t = inputs(2, n + pad_v, k + pad_t, seed + 1)
    big_v = 50 * big_v
    big_t = 50 * big_t
    big_v[:, :n], big_t[:, :k] = visual, text
    vmask = torch.arange(n + pad_v)[None].expand(2, -1) < n
    tmask = torch.arange(k + pad_t)[None].expand(2, -1) < k
    out = m(big_v, big_t, visual_mask=vmask, text_mask=tmask)
    assert torch.allclose(out.query_tokens, ref.query_tokens, atol=1e-5)
    assert torch.allclose(out.cross_attention[..., :n], ref.cross_attention, atol=1e-6)
    assert torch.equal(out.cross_attention[..., n:], torch.zeros(2, 3, pad_v))


def test_all_padded_visual_sample_stays_finite():
    visual, text = inputs(1, 3, 2, 0)
    out = model()(visual, text, visual_mask=torch.zeros(1, 3, dtype=torch.bool))
    assert torch.isfinite(out.query_tokens).all() and torch.equal(out.cross_attention, torch.zeros(1, 3, 3))


def test_text_changes_query_tokens_and_batch_elements_are_independent():
    m = model()
    visual, text = inputs(2, 4, 3, 0)
    ref = m(visual, text).query_tokens
    text2 = text.clone()
    text2[1] += 1.0
    out = m(visual, text2).query_tokens
    assert torch.equal(out[0], ref[0]) and not torch.allclose(out[1], ref[1], atol=1e-4)


def test_gradients_reach_all_parameters():
    m = model().train()
    visual, text = inputs(2, 4, 3, 0)
    out = m(visual, text)
    (out.query_tokens.pow(2).sum() + out.cross_attention.pow(2).sum()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_multi_head_attention_with_other_key_width_matches_manual_computation():
    torch.manual_seed(0)
    attn = MultiHeadAttention(dim=8, heads=1, kv_dim=5)
    q, kv = torch.randn(1, 2, 8), torch.randn(1, 3, 5)
    out = attn(q, kv)
    scores = attn.q_proj(q) @ attn.k_proj(kv).transpose(1, 2) / 8 ** 0.5
    expected = attn.o_proj(torch.softmax(scores, -1) @ attn.v_proj(kv))
    assert torch.allclose(out.values, expected, atol=1e-6)
