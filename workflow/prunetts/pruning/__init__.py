"""Pruning criteria, layer-wise allocations and the checkpoint pruner."""
