// VSA algebra kernels (spec/vsa.md section 4): trit bind/unbind, bundling sums, dot products,
// sums of squares and equal counts.
//
// Float dot products follow spec_sum per row pair: one warp per (pair, 8192-element block),
// lane l adds the exact f64 products of elements kB + 32m + l in increasing m from +0.0,
// the warp's shfl_down tree is the lane fold, and the block sums of a pair are folded
// pairwise afterwards (reduce.cu).  Integer results are exact, so their warps add with
// atomics in any order.
#include "common.cuh"

// tau((a + sign*b) mod 3): residue 0 -> 0, 1 -> +1, 2 -> -1.
__device__ __forceinline__ int vsaopt_bind1(int a, int b, int sign) {
    const int r = ((a + sign * b) % 3 + 3) % 3;
    return r == 2 ? -1 : r;
}

// One thread per group of four trits; 32-bit loads and stores where all three arrays are 4-byte aligned.
extern "C" __global__ void vsaopt_trit_bind(const signed char* __restrict__ a, const signed char* __restrict__ b,
                                            signed char* __restrict__ out, u64 n, int sign) {
    const bool vec = vsaopt_aligned(a, 4) && vsaopt_aligned(b, 4) && vsaopt_aligned(out, 4);
    for (u64 g = vsaopt_tid(); g < (n + 3) / 4; g += vsaopt_nthreads()) {
        const u64 i = 4 * g;
        if (vec && i + 4 <= n) {
            const char4 x = vsaopt_load_char4(a + i), y = vsaopt_load_char4(b + i);
            vsaopt_store_char4(out + i, vsaopt_bind1(x.x, y.x, sign), vsaopt_bind1(x.y, y.y, sign),
                               vsaopt_bind1(x.z, y.z, sign), vsaopt_bind1(x.w, y.w, sign));
        } else {
            for (u64 j = i; j < n && j < i + 4; ++j) out[j] = (signed char)vsaopt_bind1(a[j], b[j], sign);
        }
    }
}

// acc = v[0]; acc = f32(acc + v[r]) for r = 1 .. k-1, one thread per column (rows in order).
extern "C" __global__ void vsaopt_bundle_f32(const float* __restrict__ v, float* __restrict__ out, u64 k, u64 n) {
    for (u64 j = vsaopt_tid(); j < n; j += vsaopt_nthreads()) {
        float acc = v[j];
        for (u64 r = 1; r < k; ++r) acc = __fadd_rn(acc, v[r * n + j]);
        out[j] = acc;
    }
}

// Exact int32 column sums of int8 rows (k <= 2^24 keeps them exact).
extern "C" __global__ void vsaopt_bundle_i8(const signed char* __restrict__ v, int* __restrict__ out, u64 k, u64 n) {
    for (u64 j = vsaopt_tid(); j < n; j += vsaopt_nthreads()) {
        int acc = 0;
        for (u64 r = 0; r < k; ++r) acc += v[r * n + j];
        out[j] = acc;
    }
}

// Spec block sum of f64(x[t]) * f64(y[t]) over block kb of two length-d rows; lane 0 holds the result.
__device__ __forceinline__ double vsaopt_dot_block(const float* __restrict__ x, const float* __restrict__ y, u64 d,
                                                   u64 kb, int lane) {
    const double p = vsaopt_lane_sum(kb * VSAOPT_BLOCK, d, lane,
                                     [&](u64 t) { return __dmul_rn((double)x[t], (double)y[t]); });
    return vsaopt_warp_fold(p);
}

// sums[(i*m + j)*nb + kb] = spec block sum kb of row pair (a[i], b[j]); a (n, d), b (m, d); nb = ceil(d / 8192).
extern "C" __global__ void vsaopt_dot_f32_blocks(const float* __restrict__ a, const float* __restrict__ b, u64 n,
                                                 u64 m, u64 d, u64 nb, double* __restrict__ sums) {
    const int lane = vsaopt_lane();
    const u64 items = n * m * nb;
    for (u64 w = vsaopt_warp_id(); w < items; w += vsaopt_nwarps()) {
        const u64 pair = w / nb, kb = w % nb;
        const u64 i = pair / m, j = pair % m;
        const double s = vsaopt_dot_block(a + i * d, b + j * d, d, kb, lane);
        if (lane == 0) sums[w] = s;
    }
}

// sums[i*nb + kb] = spec block sum kb of f64(a[i, t])^2.
extern "C" __global__ void vsaopt_sumsq_f32_blocks(const float* __restrict__ a, u64 n, u64 d, u64 nb,
                                                   double* __restrict__ sums) {
    const int lane = vsaopt_lane();
    const u64 items = n * nb;
    for (u64 w = vsaopt_warp_id(); w < items; w += vsaopt_nwarps()) {
        const u64 i = w / nb, kb = w % nb;
        const double s = vsaopt_dot_block(a + i * d, a + i * d, d, kb, lane);
        if (lane == 0) sums[w] = s;
    }
}

// Exact int64 dot products of int8 rows: warps over (pair, block) add into out (zeroed) atomically.
extern "C" __global__ void vsaopt_dot_i8(const signed char* __restrict__ a, const signed char* __restrict__ b, u64 n,
                                         u64 m, u64 d, u64 nb, i64* __restrict__ out) {
    const int lane = vsaopt_lane();
    const u64 items = n * m * nb;
    for (u64 w = vsaopt_warp_id(); w < items; w += vsaopt_nwarps()) {
        const u64 pair = w / nb, kb = w % nb;
        const signed char* x = a + (pair / m) * d;
        const signed char* y = b + (pair % m) * d;
        i64 acc = 0;
        const u64 end = min(d, (kb + 1) * VSAOPT_BLOCK);
        for (u64 t = kb * VSAOPT_BLOCK + lane; t < end; t += VSAOPT_LANES) acc += (int)x[t] * (int)y[t];
        acc = vsaopt_warp_sum_i64(acc);
        if (lane == 0 && acc) atomicAdd(reinterpret_cast<u64*>(out + pair), (u64)acc);
    }
}

// Exact int64 sums of squares of int8 rows (out zeroed).
extern "C" __global__ void vsaopt_sumsq_i8(const signed char* __restrict__ a, u64 n, u64 d, u64 nb,
                                           i64* __restrict__ out) {
    const int lane = vsaopt_lane();
    const u64 items = n * nb;
    for (u64 w = vsaopt_warp_id(); w < items; w += vsaopt_nwarps()) {
        const u64 i = w / nb, kb = w % nb;
        const signed char* x = a + i * d;
        i64 acc = 0;
        const u64 end = min(d, (kb + 1) * VSAOPT_BLOCK);
        for (u64 t = kb * VSAOPT_BLOCK + lane; t < end; t += VSAOPT_LANES) acc += (int)x[t] * (int)x[t];
        acc = vsaopt_warp_sum_i64(acc);
        if (lane == 0 && acc) atomicAdd(reinterpret_cast<u64*>(out + i), (u64)acc);
    }
}

// Count of t with a[i, t] == b[j, t] (IEEE equality for float: -0 == +0, NaN != NaN); out zeroed.
template <typename T>
__device__ __forceinline__ void vsaopt_equal_count(const T* __restrict__ a, const T* __restrict__ b, u64 n, u64 m,
                                                   u64 d, u64 nb, i64* __restrict__ out) {
    const int lane = vsaopt_lane();
    const u64 items = n * m * nb;
    for (u64 w = vsaopt_warp_id(); w < items; w += vsaopt_nwarps()) {
        const u64 pair = w / nb, kb = w % nb;
        const T* x = a + (pair / m) * d;
        const T* y = b + (pair % m) * d;
        i64 acc = 0;
        const u64 end = min(d, (kb + 1) * VSAOPT_BLOCK);
        for (u64 t = kb * VSAOPT_BLOCK + lane; t < end; t += VSAOPT_LANES) acc += (x[t] == y[t]);
        acc = vsaopt_warp_sum_i64(acc);
        if (lane == 0 && acc) atomicAdd(reinterpret_cast<u64*>(out + pair), (u64)acc);
    }
}

extern "C" __global__ void vsaopt_equal_f32(const float* __restrict__ a, const float* __restrict__ b, u64 n, u64 m,
                                            u64 d, u64 nb, i64* __restrict__ out) {
    vsaopt_equal_count<float>(a, b, n, m, d, nb, out);
}

extern "C" __global__ void vsaopt_equal_i8(const signed char* __restrict__ a, const signed char* __restrict__ b, u64 n,
                                           u64 m, u64 d, u64 nb, i64* __restrict__ out) {
    vsaopt_equal_count<signed char>(a, b, n, m, d, nb, out);
}
