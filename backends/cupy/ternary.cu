// Ternary quantizers (spec/SPEC.md section 5): the threshold rule and Philox-driven TernGrad.
//
// One thread per group of four elements (one Philox block for the stochastic rule), in a
// grid-stride loop; a group whose input is 16-byte aligned and whose output is 4-byte
// aligned is moved with one float4 load and one 32-bit store.
#include "common.cuh"

__device__ __forceinline__ bool vsaopt_vec4_ok(const float* x, const signed char* out) {
    return vsaopt_aligned(x, 16) && vsaopt_aligned(out, 4);
}

// +1 where x > t, -1 where x < -t, else 0 (t float32; NaN gives 0).
__device__ __forceinline__ int vsaopt_threshold_trit(float v, float t) { return (v > t) - (v < -t); }

extern "C" __global__ void vsaopt_quantize_threshold(const float* __restrict__ x, signed char* __restrict__ out,
                                                     u64 n, float t) {
    const bool vec = vsaopt_vec4_ok(x, out);
    const u64 groups = (n + 3) / 4;
    for (u64 g = vsaopt_tid(); g < groups; g += vsaopt_nthreads()) {
        const u64 i = 4 * g;
        if (vec && i + 4 <= n) {
            const float4 v = *reinterpret_cast<const float4*>(x + i);
            vsaopt_store_char4(out + i, vsaopt_threshold_trit(v.x, t), vsaopt_threshold_trit(v.y, t),
                               vsaopt_threshold_trit(v.z, t), vsaopt_threshold_trit(v.w, t));
        } else {
            for (u64 j = i; j < n && j < i + 4; ++j) out[j] = (signed char)vsaopt_threshold_trit(x[j], t);
        }
    }
}

// sign(x) where u < |x| / s (float32 division, correctly rounded), else 0; u = f32(w >> 8) * 2^-24.
__device__ __forceinline__ int vsaopt_stochastic_trit(float v, u32 w, float s) {
    const float u = __fmul_rn(__uint2float_rn(w >> 8), 5.9604644775390625e-08f);
    return (u < __fdiv_rn(fabsf(v), s)) ? vsaopt_sign(v) : 0;
}

// Element i uses word i % 4 of draw block i / 4; the caller handles s == 0 (all zeros, no draw).
extern "C" __global__ void vsaopt_quantize_stochastic(const float* __restrict__ x, signed char* __restrict__ out,
                                                      u64 n, float s, u32 k0, u32 k1, u32 tensor, u32 step,
                                                      u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const bool vec = vsaopt_vec4_ok(x, out);
    const u64 groups = (n + 3) / 4;
    for (u64 g = vsaopt_tid(); g < groups; g += vsaopt_nthreads()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, g);
        const u64 i = 4 * g;
        if (vec && i + 4 <= n) {
            const float4 v = *reinterpret_cast<const float4*>(x + i);
            vsaopt_store_char4(out + i, vsaopt_stochastic_trit(v.x, w.w[0], s), vsaopt_stochastic_trit(v.y, w.w[1], s),
                               vsaopt_stochastic_trit(v.z, w.w[2], s), vsaopt_stochastic_trit(v.w, w.w[3], s));
        } else {
            for (int q = 0; q < 4 && i + q < n; ++q) out[i + q] = (signed char)vsaopt_stochastic_trit(x[i + q], w.w[q], s);
        }
    }
}
