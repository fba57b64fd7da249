"""History across shows: which regions, networks, time slots and SKUs keep failing."""
