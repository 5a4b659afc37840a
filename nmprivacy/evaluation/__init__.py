"""Attack metrics scored by an independent evaluation classifier."""
