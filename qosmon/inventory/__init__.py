"""Inventory alert state next to the stream: stock per SKU x warehouse judged
against the show's forecast sales (see ``docs/inventory.md``)."""

from qosmon.inventory.config import InventoryConfig
from qosmon.inventory.forecast import Demand
from qosmon.inventory.paging import paging_route
from qosmon.inventory.tracker import InventoryTracker, RegionStock

__all__ = ["Demand", "InventoryConfig", "InventoryTracker", "RegionStock", "paging_route"]
