"""Burst and anomaly detection, warning scores and forecasting helpers (no Django)."""
