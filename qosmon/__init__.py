"""qosmon: viewer-side QoS monitoring and diagnosis for live shopping shows."""

__version__ = "0.1.0"
