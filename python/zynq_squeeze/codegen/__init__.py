"""Stage 5, codegen: from offloaded Relax functions to sources and data files.

Owns: lowering (``lower``: per-channel int8 weights, int32 bias, multiplier + shift),
the first-layer mode (``first_layer``: a few-channel image's conv on patches), the
programs (``dae_program``: instruction words, packed weights and params, the arena
layout), the C glue that TVM calls (``glue``), the Vitis HLS / Vivado project
(``hls_project``, ``hls_export``, ``templates/``) and the reference for a whole lowered
function, quantize -> integer layers -> dequantize (``golden``).

Writes text and bytes only; compiling them is ``toolchain``'s job.
May import: ``schedule``, ``hls``, ``engine``, ``quantize``, ``partitioning``,
``frontend`` and the top-level base modules.
"""
