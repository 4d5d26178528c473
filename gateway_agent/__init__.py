"""The gateway agent. It imports nothing from the control plane; the control plane imports its
wire contract, `gateway_agent.protocol`."""

__version__ = "0.1.0"
