"""Metric functions: pure, vectorised, reduced per unit to sufficient statistics, then aggregated."""
