#!/usr/bin/env python3
"""Writes the synthetic inputs of the example report (bench.csv, bench.samples.csv, verify.csv).

Not measurements: times follow made-up models so that the fits and crossovers have known answers.
  naive          time = 4.0 N^2 ns            peak = 4 B H N^2 bytes (the N x N float scores)
  flash          time = 2.5 N^2 + 2e5 ns      peak = 16 B H N d bytes (tiles and lse)
  libtorch_sdpa  time = 3.5 N^2 + 5e4 ns      peak = 8 B H N^2 bytes (scores and probabilities)
each sample multiplied by exp(0.02 z), z standard normal (seeded), 9 repetitions.
Run: python3 make_synthetic.py  (in this directory)
"""
import math
import random

random.seed(20251128)
B, H, d, T = 1, 8, 64, 2
models = {
    "naive": (lambda n: 4.0 * n * n, lambda n: 4 * B * H * n * n),
    "flash": (lambda n: 2.5 * n * n + 2e5, lambda n: 16 * B * H * n * d),
    "libtorch_sdpa": (lambda n: 3.5 * n * n + 5e4, lambda n: 8 * B * H * n * n),
}
key_header = "variant,pass,dtype,batch,heads,seq_len,head_dim,mask,threads"
bench = [key_header + ",repetitions,median_ns,min_ns,max_ns,gflops,peak_bytes,fraction_of_gemm,git_rev,host,date"]
samples = [key_header + ",repetition,time_ns"]
gemm_gflops = 600.0
for variant, (time_model, peak_model) in models.items():
    for n in (256, 512, 1024, 2048, 4096):
        key = f"{variant},forward,float,{B},{H},{n},{d},causal,{T}"
        times = [round(time_model(n) * math.exp(0.02 * random.gauss(0, 1)), 1) for _ in range(9)]
        for r, t in enumerate(times):
            samples.append(f"{key},{r},{t}")
        median = sorted(times)[4]
        flop = 0.5 * 4 * B * H * n * n * d  # FlashAttention's model, halved for causal
        gflops = flop / median
        bench.append(f"{key},9,{median},{min(times)},{max(times)},{gflops:.4f},{peak_model(n)},"
                     f"{gflops / gemm_gflops:.5f},abc1234,example-host,2025-11-28T12:00:00")
verify = ["op,variant,dtype,shape,mask,reference,quantity,max_abs_err,max_rel_err,norm_rel_err,tolerance,passed,seed"]
for variant in ("naive", "flash"):
    for dtype, err, tol in (("float", 3e-7, 1e-5), ("double", 2e-15, 1e-12)):
        for reference in ("libtorch", "finite_difference"):
            for quantity in ("out", "dq", "dk", "dv"):
                e = err * (30 if reference == "finite_difference" else 1) * (1 + 0.5 * random.random())
                t = tol * (1e3 if reference == "finite_difference" else 1)
                verify.append(f"attention,{variant},{dtype},\"[1,8,128,64]\",causal,{reference},{quantity},"
                              f"{e * 4:.3e},{e * 10:.3e},{e:.3e},{t:.1e},{'true' if e <= t else 'false'},42")
verify.append("layer_norm,,float,\"[64,32]\",,libtorch,dgamma,2.1e-4,3.0e-3,4.2e-5,1e-5,false,7")
for name, lines in (("bench.csv", bench), ("bench.samples.csv", samples), ("verify.csv", verify)):
    with open(name, "w") as f:
        f.write("\n".join(lines) + "\n")
