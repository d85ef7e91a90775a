"""Model rollout: registry (validated, content-addressed, signed), campaigns, the chunk server."""
