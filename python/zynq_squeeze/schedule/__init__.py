"""Stage 4, schedule: how each layer is tiled, which engine is built, and what it costs.

Owns: the per-layer tiler (``tiling``), the fast cycle model (``cycle_model``, cycles at
the PL clock) and the resource model (``resources``, BRAM18K/DSP/LUT/FF) that the search
uses, the engine search per model and board (``engine_search``) and the choice between
a tuning log and the default search (``select``: ``choose_engine``,
``choose_schedules``, the tuning-log format).

May import: ``hls``, ``engine``, ``quantize``, ``partitioning``, ``frontend`` and the
top-level base modules.
"""
