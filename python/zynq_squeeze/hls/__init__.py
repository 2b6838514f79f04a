"""Tools over HLS artefacts: what a Vitis HLS user would run on the generated sources.

Owns: the synthesizability lint (``lint``: the rules the generated HLS C++ must follow)
and the csynth report reader (``csynth_report``: Vivado HLS 2020.x and Vitis HLS 2020.2+
``csynth.xml``, compared with the model by the CLI). ``zynq_squeeze.hls_report`` is kept
as an alias of ``csynth_report``.

May import: ``engine``, ``quantize``, ``partitioning``, ``frontend`` and the top-level
base modules (it sits before ``schedule`` so that the tuner can read reports and
``codegen`` can lint what it writes).
"""
