"""Custom Lava processes of the hardware path (memmap-backed input, spike and state recording).

This package holds only Lava processes and their models: Lava's compiler imports every module
beside a process to find its models, so nothing else may live here. Importing it imports Lava
(which sets the multiprocessing start method to ``fork``); import it through
``hw_export.lava_env.lava_modules()``.
"""
