"""Generation: s1 budget forcing, the prefix-shared budget sweep, and the decoding backends."""
