// The spec's float64 summation (spec/SPEC.md section 3) and the |x| statistics.
//
// Mapping: one warp per 8192-element block; lane l adds elements kB + 32m + l in
// increasing m from +0.0 (one __dadd_rn each); the lane fold h = 16, 8, 4, 2, 1 is
// the warp's shfl_down tree; the block sums are then folded pairwise
// (s[2j] + s[2j+1], an odd last one carried) by vsaopt_fold_rows_*.
#include "common.cuh"

// Per block k: sums[k] = spec block sum of |x_i| as f64; res[1] = max over x of the sign-cleared bits
// (atomicMax; res[1] must start at 0).  A warp-stride loop over blocks keeps k warp-uniform.
extern "C" __global__ void vsaopt_abs_blocks(const float* __restrict__ x, u64 n, double* __restrict__ sums,
                                             u64* __restrict__ res) {
    const int lane = vsaopt_lane();
    const u64 nblocks = (n + VSAOPT_BLOCK - 1) / VSAOPT_BLOCK;
    u32 mx = 0;
    for (u64 k = vsaopt_warp_id(); k < nblocks; k += vsaopt_nwarps()) {
        double p = vsaopt_lane_sum(k * VSAOPT_BLOCK, n, lane, [&](u64 i) {
            const u32 bits = __float_as_uint(x[i]) & VSAOPT_ABS_MASK;
            mx = max(mx, bits);
            return (double)__uint_as_float(bits);
        });
        p = vsaopt_warp_fold(p);
        if (lane == 0) sums[k] = p;
    }
    mx = vsaopt_warp_max_u32(mx);
    if (lane == 0 && mx) atomicMax(res + 1, (u64)mx);
}

// Block fold of spec section 3, step 4, one row of K block sums per thread, in place:
// s[j] = s[2j] + s[2j+1] for j = 0, 1, ... (reads never overtake writes), odd last carried.
extern "C" __global__ void vsaopt_fold_rows_serial(double* sums, u64 rows, u64 K, double* out) {
    for (u64 r = vsaopt_tid(); r < rows; r += vsaopt_nthreads()) {
        double* s = sums + r * K;
        u64 k = K;
        while (k > 1) {
            const u64 half = k / 2;
            for (u64 j = 0; j < half; ++j) s[j] = __dadd_rn(s[2 * j], s[2 * j + 1]);
            if (k & 1) {
                s[half] = s[k - 1];
                k = half + 1;
            } else {
                k = half;
            }
        }
        out[r] = K ? s[0] : 0.0;
    }
}

// The same fold, one row per thread block: each level reads `src` and writes `dst` (ping-pong between
// `a`, rows x K, and `b`, rows x ceil(K/2)), with a barrier between levels.  Same sums as the serial fold.
extern "C" __global__ void vsaopt_fold_rows_cta(double* a, double* b, u64 rows, u64 K, double* out) {
    const u64 bstride = (K + 1) / 2;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        double* src = a + r * K;
        double* dst = b + r * bstride;
        u64 k = K;
        while (k > 1) {
            const u64 half = k / 2;
            for (u64 j = threadIdx.x; j < half; j += blockDim.x) dst[j] = __dadd_rn(src[2 * j], src[2 * j + 1]);
            if ((k & 1) && threadIdx.x == 0) dst[half] = src[k - 1];
            __syncthreads();
            k = half + (k & 1);
            double* t = src;
            src = dst;
            dst = t;
        }
        if (threadIdx.x == 0) out[r] = K ? src[0] : 0.0;
        __syncthreads();
    }
}
