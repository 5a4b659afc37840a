"""Target models and evaluation classifiers; see ``nmprivacy.models.base`` for the protocol."""
