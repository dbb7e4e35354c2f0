"""Inputs: image loading and the preprocessing recorded in an export's sidecar."""
