// Ternary accumulation and matrix-free projection kernels (spec/accumulator.md, spec/compressor.md).
#include "common.cuh"

// --- random signs -------------------------------------------------------------------------
// Element e is negated iff bit e % 32 of word e / 32 of the draw is set.  A warp handles a tile of
// 4096 elements (128 words, 32 Philox blocks): lane l computes block 32*tile + l, and the word of
// row j (elements 32j .. 32j+31 of the tile, lane l taking element 32j + l) is shuffled from lane
// j / 4.  Loads and stores stay coalesced and each Philox block is computed once.
__device__ __forceinline__ float vsaopt_negate(float v) { return __uint_as_float(__float_as_uint(v) ^ 0x80000000u); }
__device__ __forceinline__ signed char vsaopt_negate(signed char v) { return (signed char)(-(int)v); }

template <typename T>
__device__ __forceinline__ void vsaopt_signs(const T* __restrict__ x, T* __restrict__ out, u64 n, const vsaopt_draw& d) {
    const int lane = vsaopt_lane();
    const u64 tiles = (n + 4095) / 4096;
    for (u64 tile = vsaopt_warp_id(); tile < tiles; tile += vsaopt_nwarps()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, 32 * tile + lane);
        for (int j = 0; j < 128; ++j) {
            const u32 word = __shfl_sync(VSAOPT_FULL_MASK, vsaopt_word(w, j & 3), j >> 2);
            const u64 e = 4096 * tile + 32 * (u64)j + lane;
            if (e < n) {
                const T v = x[e];
                out[e] = ((word >> lane) & 1u) ? vsaopt_negate(v) : v;
            }
        }
    }
}

extern "C" __global__ void vsaopt_random_signs_f32(const float* __restrict__ x, float* __restrict__ out, u64 n, u32 k0,
                                                   u32 k1, u32 tensor, u32 step, u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    vsaopt_signs<float>(x, out, n, d);
}

extern "C" __global__ void vsaopt_random_signs_i8(const signed char* __restrict__ x, signed char* __restrict__ out,
                                                  u64 n, u32 k0, u32 k1, u32 tensor, u32 step, u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    vsaopt_signs<signed char>(x, out, n, d);
}

// --- Walsh-Hadamard transform -----------------------------------------------------------------
// Stage h (1, 2, 4, ...) replaces (y[i], y[i+h]) by (y[i] + y[i+h], y[i] - y[i+h]) for i & h == 0,
// from the previous stage's values.  Pair p of a stage is i = (p / h) * 2h + p % h.  Stages h < sub
// run in shared memory on sub-blocks of `sub` elements (a stage never crosses one); larger stages
// run one launch each on global memory.  The last stage multiplies by `scale` (a second rounding).
__device__ __forceinline__ u64 vsaopt_pair_index(u64 p, u64 h) { return (p / h) * 2 * h + (p % h); }

// One pass per tile of `tile` elements (a multiple of `sub`; the last tile may be shorter, still a multiple
// of `sub`), so that small transforms keep a whole thread block busy.
extern "C" __global__ void vsaopt_fwht_shared(float* __restrict__ y, u64 total, u32 tile, u32 sub, float scale,
                                              int apply_scale) {
    extern __shared__ float s[];
    const u64 ntiles = (total + tile - 1) / tile;
    for (u64 tb = blockIdx.x; tb < ntiles; tb += gridDim.x) {
        float* g = y + tb * tile;
        const u32 cnt = (u32)min((u64)tile, total - tb * tile);
        for (u32 i = threadIdx.x; i < cnt; i += blockDim.x) s[i] = g[i];
        __syncthreads();
        for (u32 h = 1; h < sub; h <<= 1) {
            for (u32 p = threadIdx.x; p < cnt / 2; p += blockDim.x) {
                const u32 i = (u32)vsaopt_pair_index(p, h);
                const float a = s[i], b = s[i + h];
                s[i] = __fadd_rn(a, b);
                s[i + h] = __fsub_rn(a, b);
            }
            __syncthreads();
        }
        for (u32 i = threadIdx.x; i < cnt; i += blockDim.x) g[i] = apply_scale ? __fmul_rn(s[i], scale) : s[i];
        __syncthreads();
    }
}

extern "C" __global__ void vsaopt_fwht_stage(float* __restrict__ y, u64 total, u64 h, float scale, int apply_scale) {
    for (u64 p = vsaopt_tid(); p < total / 2; p += vsaopt_nthreads()) {
        const u64 i = vsaopt_pair_index(p, h);
        const float a = y[i], b = y[i + h];
        float u = __fadd_rn(a, b), v = __fsub_rn(a, b);
        if (apply_scale) {
            u = __fmul_rn(u, scale);
            v = __fmul_rn(v, scale);
        }
        y[i] = u;
        y[i + h] = v;
    }
}

// --- stratified sampling -----------------------------------------------------------------------
// Sample j < m owns [lo, hi), lo = j*N/m, hi = (j+1)*N/m; r_j = lo + (w_j * size) >> 32; weight a_hi
// when size > q = N/m, else a_lo.  One thread per Philox block (samples 4g .. 4g+3).
__device__ __forceinline__ u64 vsaopt_position(u64 j, u64 N, u64 m, u32 w, u64 q, bool& big) {
    const u64 lo = j * N / m, hi = (j + 1) * N / m, size = hi - lo;
    big = size > q;
    return lo + (((u64)w * size) >> 32);
}

extern "C" __global__ void vsaopt_srht_gather(const float* __restrict__ z, float* __restrict__ y, u64 m, u64 N, u64 q,
                                              float a_lo, float a_hi, u32 k0, u32 k1, u32 tensor, u32 step,
                                              u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    for (u64 g = vsaopt_tid(); g < (m + 3) / 4; g += vsaopt_nthreads()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, g);
        for (int k = 0; k < 4; ++k) {
            const u64 j = 4 * g + k;
            if (j < m) {
                bool big;
                const u64 pos = vsaopt_position(j, N, m, w.w[k], q, big);
                y[j] = __fmul_rn(z[pos], big ? a_hi : a_lo);
            }
        }
    }
}

extern "C" __global__ void vsaopt_srht_scatter(const float* __restrict__ y, float* __restrict__ v, u64 m, u64 N, u64 q,
                                               float a_lo, float a_hi, u32 k0, u32 k1, u32 tensor, u32 step,
                                               u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    for (u64 g = vsaopt_tid(); g < (m + 3) / 4; g += vsaopt_nthreads()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, g);
        for (int k = 0; k < 4; ++k) {
            const u64 j = 4 * g + k;
            if (j < m) {
                bool big;
                const u64 pos = vsaopt_position(j, N, m, w.w[k], q, big);
                v[pos] = __fmul_rn(y[j], big ? a_hi : a_lo);
            }
        }
    }
}

// --- masked |x| sum -----------------------------------------------------------------------------
// spec_sum of v_i = f64(|x_i|) if |x_i| > t else +0.0 (a lane never holds -0.0, so skipping the +0.0
// terms is the same sum): one warp per 8192-element block as in reduce.cu; the count adds into res[1].
extern "C" __global__ void vsaopt_abs_above_blocks(const float* __restrict__ x, u64 n, float t,
                                                   double* __restrict__ sums, u64* __restrict__ res) {
    const int lane = vsaopt_lane();
    const u64 nblocks = (n + VSAOPT_BLOCK - 1) / VSAOPT_BLOCK;
    i64 count = 0;
    for (u64 k = vsaopt_warp_id(); k < nblocks; k += vsaopt_nwarps()) {
        double p = vsaopt_lane_sum(k * VSAOPT_BLOCK, n, lane, [&](u64 i) {
            const float a = fabsf(x[i]);
            const bool keep = a > t;
            count += keep;
            return keep ? (double)a : 0.0;
        });
        p = vsaopt_warp_fold(p);
        if (lane == 0) sums[k] = p;
    }
    count = vsaopt_warp_sum_i64(count);
    if (lane == 0 && count) atomicAdd(res + 1, (u64)count);
}

// --- ternary accumulation --------------------------------------------------------------------------
// counts += sign(g) * [f64(w) < f64(f32(|g| * inv)) * 2^32]; one thread per Philox block (float4 and
// 32-bit count accesses where aligned).
__device__ __forceinline__ int vsaopt_stoch_add(int c, float v, u32 w, float inv) {
    const float p = __fmul_rn(fabsf(v), inv);
    const bool keep = (double)w < __dmul_rn((double)p, 4294967296.0);
    return c + (keep ? vsaopt_sign(v) : 0);
}

extern "C" __global__ void vsaopt_accum_add_stochastic(signed char* __restrict__ counts, const float* __restrict__ g,
                                                       u64 n, float inv, u32 k0, u32 k1, u32 tensor, u32 step,
                                                       u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const bool vec = vsaopt_aligned(g, 16) && vsaopt_aligned(counts, 4);
    for (u64 b = vsaopt_tid(); b < (n + 3) / 4; b += vsaopt_nthreads()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, b);
        const u64 i = 4 * b;
        if (vec && i + 4 <= n) {
            const float4 v = *reinterpret_cast<const float4*>(g + i);
            const char4 c = vsaopt_load_char4(counts + i);
            vsaopt_store_char4(counts + i, vsaopt_stoch_add(c.x, v.x, w.w[0], inv), vsaopt_stoch_add(c.y, v.y, w.w[1], inv),
                               vsaopt_stoch_add(c.z, v.z, w.w[2], inv), vsaopt_stoch_add(c.w, v.w, w.w[3], inv));
        } else {
            for (int k = 0; k < 4 && i + k < n; ++k)
                counts[i + k] = (signed char)vsaopt_stoch_add(counts[i + k], g[i + k], w.w[k], inv);
        }
    }
}

// counts += [g > t] - [g < -t]; one thread per group of four.
__device__ __forceinline__ int vsaopt_thr_add(int c, float v, float t) { return c + (v > t) - (v < -t); }

extern "C" __global__ void vsaopt_accum_add_threshold(signed char* __restrict__ counts, const float* __restrict__ g,
                                                      u64 n, float t) {
    const bool vec = vsaopt_aligned(g, 16) && vsaopt_aligned(counts, 4);
    for (u64 q = vsaopt_tid(); q < (n + 3) / 4; q += vsaopt_nthreads()) {
        const u64 i = 4 * q;
        if (vec && i + 4 <= n) {
            const float4 v = *reinterpret_cast<const float4*>(g + i);
            const char4 c = vsaopt_load_char4(counts + i);
            vsaopt_store_char4(counts + i, vsaopt_thr_add(c.x, v.x, t), vsaopt_thr_add(c.y, v.y, t),
                               vsaopt_thr_add(c.z, v.z, t), vsaopt_thr_add(c.w, v.w, t));
        } else {
            for (u64 j = i; j < n && j < i + 4; ++j) counts[j] = (signed char)vsaopt_thr_add(counts[j], g[j], t);
        }
    }
}

// c' = (c >> s) + [w < (c & (2^s - 1)) << (32 - s)], 1 <= s <= 32, in int64.
extern "C" __global__ void vsaopt_accum_rescale(signed char* __restrict__ counts, u64 n, int shift, u32 k0, u32 k1,
                                                u32 tensor, u32 step, u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const i64 mask = (((i64)1) << shift) - 1;
    for (u64 b = vsaopt_tid(); b < (n + 3) / 4; b += vsaopt_nthreads()) {
        const vsaopt_u32x4 w = vsaopt_draw_block(d, b);
        for (int k = 0; k < 4; ++k) {
            const u64 i = 4 * b + k;
            if (i < n) {
                const i64 c = counts[i];
                const i64 thr = (c & mask) << (32 - shift);
                counts[i] = (signed char)((c >> shift) + ((i64)w.w[k] < thr ? 1 : 0));
            }
        }
    }
}

// res[0] = max over i of |c_i| as an integer (|-128| = 128; atomicMax, res[0] must start at 0).
extern "C" __global__ void vsaopt_count_abs_max(const signed char* __restrict__ counts, u64 n, u64* __restrict__ res) {
    u32 mx = 0;
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const int c = counts[i];
        mx = max(mx, (u32)(c < 0 ? -c : c));
    }
    mx = vsaopt_warp_max_u32(mx);
    if (vsaopt_lane() == 0 && mx) atomicMax(res, (u64)mx);
}

// f32((f64(c) * unit) / divisor).
extern "C" __global__ void vsaopt_accum_mean(const signed char* __restrict__ counts, float* __restrict__ out, u64 n,
                                             double unit, double divisor) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads())
        out[i] = __double2float_rn(__ddiv_rn(__dmul_rn((double)counts[i], unit), divisor));
}

// Byte j = (c[2j] & 15) | ((c[2j+1] & 15) << 4), a missing c[2j+1] being 0.
extern "C" __global__ void vsaopt_nibble_pack(const signed char* __restrict__ c, u8* __restrict__ out, u64 n, u64 nbytes) {
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        const u32 lo = (u32)c[2 * j] & 15u;
        const u32 hi = 2 * j + 1 < n ? ((u32)c[2 * j + 1] & 15u) : 0u;
        out[j] = (u8)(lo | (hi << 4));
    }
}

// Nibble v becomes v - 16 if v >= 8 else v; the first n values.
extern "C" __global__ void vsaopt_nibble_unpack(const u8* __restrict__ p, signed char* __restrict__ out, u64 n,
                                                u64 nbytes) {
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        const int lo = p[j] & 15, hi = p[j] >> 4;
        if (2 * j < n) out[2 * j] = (signed char)(lo >= 8 ? lo - 16 : lo);
        if (2 * j + 1 < n) out[2 * j + 1] = (signed char)(hi >= 8 ? hi - 16 : hi);
    }
}
