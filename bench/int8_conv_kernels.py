"""Instructions per MAC of the int8 conv and matmul kernels (mt.QConv,
mt.QMatMul; default kernels or
MICROTRAIN_KERNELS=reference) on single-layer models, rv32imc and Cortex-M4
(QEMU counts, not cycles). Quoted in docs/quantization.md.

    python bench/int8_conv_kernels.py
    MICROTRAIN_KERNELS=reference python bench/int8_conv_kernels.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import numpy as np, microtrain, os
from int8_check import q_model, rand_s8, rand_requant
rng=np.random.default_rng(0)
for label,xs,ws,attrs in (("conv3x3 32->32 16x16",(1,32,16,16),(32,32,3,3),dict(pads=[1,1,1,1])),
                          ("dw3x3 32 16x16",(1,32,16,16),(32,1,3,3),dict(pads=[1,1,1,1],group=32)),
                          ("pw 32->32 16x16",(1,32,16,16),(32,32,1,1),{}),
                          ("matmul 16x64 @ 64x32",(16,64),(64,32),{})):
    x,w=rand_s8(rng,xs),rand_s8(rng,ws)
    if label.startswith("matmul"):
        mul,add,shift=rand_requant(rng,ws[1],taps=ws[0])
        m=q_model("mt.QMatMul",{"x":x},{"w":w,"mul":mul,"add":add},a_zero_point=3,shift=shift)
    else:
        mul,add,shift=rand_requant(rng,ws[0],taps=int(np.prod(ws[1:])))
        m=q_model("mt.QConv",{"x":x},{"w":w,"mul":mul,"add":add},x_zero_point=3,shift=shift,**attrs)
    for t in ("rv32imc","cortex-m4"):
        cm=microtrain.compile(m,t); p=cm.profile({"x":x})
        print(label,t,os.environ.get("MICROTRAIN_KERNELS","fast"),round(p.instructions/p.macs,2))
