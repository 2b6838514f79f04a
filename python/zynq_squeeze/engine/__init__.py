"""The accelerator as the compiler sees it: its parameters and its instruction format.

Owns: ``config`` (``EngineConfig``: the MAC array and buffer depths one generated engine
has; ``TileSchedule``: one layer's tiling) and ``descriptor`` (the binary layer
descriptor the engine executes, mirrored from ``src/zsq_types.h``). Everything from
``schedule`` down shares these.

May import: ``quantize``, ``partitioning``, ``frontend`` and the top-level base modules.
"""
