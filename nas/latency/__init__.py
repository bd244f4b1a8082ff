"""Latency: measuring a network on a device, and per-device tables that predict it from its layers."""
