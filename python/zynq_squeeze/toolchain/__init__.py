"""Stage 6, build and run: native compilers, the C simulation and ``tvm.compile``.

Owns: the C/C++ compiler driver and its object cache (``compiler``: host g++ or the
ARM cross compiler), the ctypes C simulation of the engine (``dae_sim``), the
``relax.ext.zynq_squeeze`` codegen entry that TVM's ``RunCodegen`` calls (``relax_ext``:
lower, schedule, generate, compile one object), the options of one build
(``context``) and the offload pass plus ``build()`` (``driver``).

May import: every stage above (``codegen``, ``schedule``, ``hls``, ``engine``,
``quantize``, ``partitioning``, ``frontend``) and the top-level base modules.
(The package is ``toolchain`` because ``zynq_squeeze.build`` is the public function.)
"""
