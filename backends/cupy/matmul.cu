// The ordered matrix product of the training harness (backends/numpy/matmul.py): one thread per
// output element, a sequential float32 sum over k from +0.0, each product and each addition an
// explicitly rounded intrinsic (never fused; the module is also built with --fmad=false).
#include "common.cuh"

// c[i, j] = f32(... f32(f32(0 + f32(a[i,0]*b[0,j])) + f32(a[i,1]*b[1,j])) ... + f32(a[i,k-1]*b[k-1,j])).
extern "C" __global__ void vsaopt_matmul_ordered(const float* __restrict__ a, const float* __restrict__ b,
                                                 float* __restrict__ c, u64 n, u64 k, u64 m) {
    for (u64 t = vsaopt_tid(); t < n * m; t += vsaopt_nthreads()) {
        const u64 i = t / m, j = t % m;
        float s = 0.0f;
        for (u64 q = 0; q < k; ++q) s = __fadd_rn(s, __fmul_rn(a[i * k + q], b[q * m + j]));
        c[t] = s;
    }
}
