"""The device side of model rollouts: verify, download, install, self-test, swap, watch, commit or revert.

Kept import-free so ``edge_agent.config`` can use ``edge_agent.updater.config`` without pulling in
onnxruntime or paho; the agent imports ``edge_agent.updater.agent_hook`` only when ``updater:`` is set.
"""
