"""nmprivacy: measure how much private training data leaks out of spiking neural networks.

Data flows one way: dataset -> encoding -> model -> attack -> evaluation -> export/validation -> report.
"""

__version__ = "0.1.0"
