"""Stage 2, partition: what the accelerator takes, and why the rest stays on the CPU.

Owns: the graph clean-up run before matching (``cleanup``: BatchNorm folded into the
conv, or made a depthwise conv when no conv can take it, inference Dropout removed, Pad / auto_pad=SAME_* into the conv's padding, Clip(0, c)
into the requantization clamp), the pattern table (``patterns``, the only place that
decides what is offloadable; every rejection carries a reason), the float view of an
offloaded chain (``composite``), the pooling description shared by everything below
(``pool_spec``) and the pass that fuses composites (one function per call site),
attaches calibration ranges, merges them into offloaded functions and reports
(``partitioner``: ``partition_with_report``, ``PartitionReport``).

It comes before ``quantize`` because calibration is per offloadable chain: the
calibrator runs this stage's pattern fusion to find the chains it measures.

May import: ``frontend`` and the top-level base modules.
(The package is ``partitioning`` because ``zynq_squeeze.partition`` is the public
function that returns the partitioned module and its report.)
"""
