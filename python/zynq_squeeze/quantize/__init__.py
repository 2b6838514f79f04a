"""Stage 3, quantize: from float chains to integer layers, and the integer golden model.

Owns: calibration (``calibrate``: activation ranges from running the float model on
the CPU, per offloadable chain, each a statistic of a histogram of the tensor's values,
``ranges``; the weight format and its bias correction, ``weights``; ``qdq``: a QDQ
model's own scales instead), the
requantization arithmetic (``requant``: integer multiplier + shift, rounding half
toward +infinity), the quantized layer descriptions that are the contract with the
accelerator (``layers``: ``ConvParams``, ``ConvLayer``, ``FireLayer``) and the numpy
integer reference every simulation is compared with bit for bit (``reference``).

May import: ``partitioning``, ``frontend`` and the top-level base modules.
"""
