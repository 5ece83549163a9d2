"""The RG-LRU's constants (Griffin §2.4, App. A; recurrentgemma ``layers.py``), shared by the scan
(:mod:`seqlib.layers.scan`) and the fused kernel (:mod:`seqlib.kernels.rglru_triton`)."""

C_RGLRU = 8.0  # the constant c in a_t = a^{c r_t} (hard-coded -8.0 in the reference)
MAX_SQRT_GRADIENT = 1000.0  # _MAX_SQRT_GRADIENT in the reference: the cap on d sqrt(z) / dz
