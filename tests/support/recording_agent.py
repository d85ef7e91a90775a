"""An agent that keeps every event it emitted, for assertions (the runtime agent keeps none)."""

from __future__ import annotations

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from shared.payloads import EventPayload


class RecordingAgent(Agent):
    def __init__(self, config: AgentConfig):
        super().__init__(config)
        self.emitted: list[EventPayload] = []
        self.event_listeners.append(self.emitted.append)
