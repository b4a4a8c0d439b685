"""Stage 2, features → datasets and batches: labels, splits, peer formats, ground truth, padded tensors."""
