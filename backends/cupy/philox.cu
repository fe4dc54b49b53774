// Philox4x32 kernels: the general block function and the spec's per-element words.
#include "common.cuh"

// out[i] = Philox4x32-rounds(counter[i], key[i]) for i < n; counter (n, 4), key (n, 2) uint32.
extern "C" __global__ void vsaopt_philox4x32(const u32* __restrict__ counter, const u32* __restrict__ key,
                                             u32* __restrict__ out, u64 n, int rounds) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const vsaopt_u32x4 v = vsaopt_philox(counter[4 * i], counter[4 * i + 1], counter[4 * i + 2],
                                             counter[4 * i + 3], key[2 * i], key[2 * i + 1], rounds);
        out[4 * i] = v.w[0];
        out[4 * i + 1] = v.w[1];
        out[4 * i + 2] = v.w[2];
        out[4 * i + 3] = v.w[3];
    }
}

// Word i % 4 of block i / 4 for every i < n; one thread per block of four elements.
extern "C" __global__ void vsaopt_philox_bits(u32* __restrict__ out, u64 n, u32 k0, u32 k1, u32 tensor, u32 step,
                                              u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const u64 nblocks = (n + 3) / 4;
    for (u64 b = vsaopt_tid(); b < nblocks; b += vsaopt_nthreads()) {
        const vsaopt_u32x4 v = vsaopt_draw_block(d, b);
        for (int q = 0; q < 4; ++q)
            if (4 * b + q < n) out[4 * b + q] = v.w[q];
    }
}

// u_i = f32(w_i >> 8) * 2^-24 (both steps exact).
extern "C" __global__ void vsaopt_uniform_f32(float* __restrict__ out, u64 n, u32 k0, u32 k1, u32 tensor, u32 step,
                                              u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const u64 nblocks = (n + 3) / 4;
    for (u64 b = vsaopt_tid(); b < nblocks; b += vsaopt_nthreads()) {
        const vsaopt_u32x4 v = vsaopt_draw_block(d, b);
        for (int q = 0; q < 4; ++q)
            if (4 * b + q < n) out[4 * b + q] = __fmul_rn(__uint2float_rn(v.w[q] >> 8), 5.9604644775390625e-08f);
    }
}
