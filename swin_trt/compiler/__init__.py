"""The one-command compile: export -> rewrite -> calibrate -> quantize -> build -> validate."""
