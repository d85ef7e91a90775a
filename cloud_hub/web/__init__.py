"""Blueprints of the hub web app: health, REST API, dashboard pages."""
