"""Time MLSys·im (``mlsysim`` 0.3.0, the reference implementation) on the calls benchmarks/run.py times
in mlsysim-lab, and print the timings as JSON. Run by run.py with an interpreter that has mlsysim
(``pip install 'mlsysim-lab[peer]'``, or a throwaway venv passed as ``--peer-python``); never imported by
mlsysim-lab itself.

The pairs, by question (inputs as alike as the two APIs allow):
- serving: ServingModel().solve(Llama-2-70B, H100, seq_len=1280, batch_size=8) vs
  ml.serve("Llama-2-70B", "H100 SXM", batch=8, prompt_tokens=1024, output_tokens=256)
- one device, one forward pass: SingleNodeModel().solve(Llama-2-70B, H100, batch_size=8) vs
  ml.roofline("Llama-2-70B", "H100 SXM", batch=8, phase="prefill", context=1280)
- training on one 8-GPU DGX H100 and on the 100,000-GPU cluster: DistributedModel().solve(...) vs ml.train(...)
"""
from __future__ import annotations

import json
import statistics
import sys
import timeit


def per_call(fn, number: int, repeat: int) -> dict:
    fn()
    runs = [t / number for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return {"best": min(runs), "median": statistics.median(runs)}


def main(repeat: int) -> dict:
    import mlsysim as ms
    from mlsysim.engine.solvers.distributed import DistributedModel
    from mlsysim.engine.solvers.performance import SingleNodeModel
    from mlsysim.engine.solvers.serving import ServingModel
    from mlsysim.systems.types import Fleet

    model, h100 = ms.Models.Language.Llama2_70B, ms.Hardware.Cloud.H100
    big = ms.Systems.Clusters.Mega_100K
    dgx = Fleet(name="one DGX H100", node=ms.Systems.Nodes.DGX_H100, count=1, fabric=big.fabric)
    return {
        "version": ms.__version__,
        "serve": per_call(lambda: ServingModel().solve(model, h100, seq_len=1280, batch_size=8), 20, repeat),
        "roofline": per_call(lambda: SingleNodeModel().solve(model, h100, batch_size=8), 20, repeat),
        "train_8": per_call(lambda: DistributedModel().solve(model, dgx, batch_size=1024, tp_size=8,
                                                             seq_len=4096, zero_stage=3), 10, repeat),
        "train_100k": per_call(lambda: DistributedModel().solve(model, big, batch_size=100_000, tp_size=8,
                                                                seq_len=4096, zero_stage=3), 10, repeat),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
