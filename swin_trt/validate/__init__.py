"""Validation: candidates against a reference on real images."""
