"""Drop-in replacements for other trackers' APIs (``wattprint.compat.codecarbon``)."""
