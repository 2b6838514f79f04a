"""Last stage, deployment: a bundle that runs the whole model on the board with no Python
or TVM there.

Owns: the generated C executor with a static memory plan that drives TVM's compiled CPU
operators and the offloaded functions (``executor``), the CPU operators compiled for
the Cortex-A9 into one object (``tir_object``), the model file with header, version and
checksum (``model_file``), the executables (``bundle``), the boot files (device-tree
overlay, fpga-manager loader: ``boot``), the board README and ctypes wrapper
(``readme``), and the whole bundle (``deploy``: ``zynq_squeeze.deploy``).

May import: every stage before it and the top-level base modules. Only ``cli`` and the
package root import it. (The package is ``deployment`` because ``zynq_squeeze.deploy``
is the public function.)
"""
