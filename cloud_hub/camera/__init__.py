"""Seeing and steering cameras: latest preview frames, remote zone/line configs, event detail pages."""
