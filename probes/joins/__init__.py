"""Ways to join a stream, one module each behind :class:`probes.joins.base.Joiner`."""
