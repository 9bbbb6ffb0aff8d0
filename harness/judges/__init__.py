"""Judges: the metric modules that turn responses into verdicts."""
