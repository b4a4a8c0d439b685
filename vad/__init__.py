"""vadgraph package."""
