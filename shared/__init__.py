"""The wire contract between edge_agent and cloud_hub.

Both sides import this package and nothing of each other: topic names, payload models (each with a
schema version), the model manifest and the signature helpers live here, so a change to the protocol is
one change in one place.
"""

SCHEMA_VERSION = 1
