"""Data-set registry and loaders; see ``nmprivacy.data.base`` for layouts."""
