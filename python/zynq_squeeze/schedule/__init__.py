"""Stage 4, schedule: how each layer is tiled, which engine is built, and what it costs.

Owns: the lowering of tiled layers to instruction words and their token discipline
(``instructions``), the fast cycle model that replays them (``timing``, cycles at the PL
clock, equal to the C simulation's executed timing), the tiler (``dae_tiling``: buffer
needs per tile, the fastest fitting tile), the resource model (``dae_resources``,
BRAM18K/DSP/LUT/FF), the engine search per model and board (``dae_engine_search``) and
the choice between a tuning log and the search (``select``: ``choose_engine``,
``choose_tiles``, the tuning-log format).

May import: ``hls``, ``engine``, ``quantize``, ``partitioning``, ``frontend`` and the
top-level base modules.
"""
