"""Model-inversion attacks; see ``nmprivacy.attacks.base`` for the interface."""
