"""The accelerator as the compiler sees it: its parameters, its ISA and its interface.

Owns: ``dae_config`` (``DaeConfig``: the MAC array and buffer depths one generated engine
has, and its timing constants; ``DaeTile``: one layer's tiling), ``isa`` (the 64-bit
instruction words, the module registers and the derived registers; ``src/zsq_isa.h`` is
generated from it) and ``interface`` (the top function's ports, from which the register
map and the block design are generated). Everything from ``schedule`` down shares these.

May import: ``quantize``, ``partitioning``, ``frontend`` and the top-level base modules.
"""
