"""Stage 9, tuning: ``zynq-squeeze tune`` searches the engine and the layer tiles.

Owns: the search space and its candidates (``candidate``), the measurers (the fast
model, the C simulation, Vitis HLS csynth, boards over TVM RPC), the strategies, the
append-only JSON Lines log of measurements and ``tune()``; ``schedule.select`` applies a
log's best records at compile time (``--tuning-log tune.jsonl``).

May import: every stage before it and the top-level base modules. Only ``report``,
``deployment``, ``cli`` and the package root import it.
"""
