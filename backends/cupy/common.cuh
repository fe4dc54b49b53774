// Shared device code of the vsaopt CUDA kernels: the Philox4x32 block
// function, the spec's summation constants and the warp lane fold.
//
// No standard headers: the sources compile under NVRTC (cupy.RawModule) and
// nvcc alike.  Every float operation is an explicitly rounded intrinsic
// (__fadd_rn, __dmul_rn, ...), which the compiler never contracts into a fused
// multiply-add; the modules are also built with --fmad=false.
#pragma once

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

// Random123 constants: round multipliers and the Weyl key increments.
#define VSAOPT_PHILOX_M0 0xD2511F53u
#define VSAOPT_PHILOX_M1 0xCD9E8D57u
#define VSAOPT_PHILOX_W0 0x9E3779B9u
#define VSAOPT_PHILOX_W1 0xBB67AE85u

// spec/SPEC.md section 3: elements per summation block and lanes per block.
#define VSAOPT_BLOCK 8192
#define VSAOPT_LANES 32
#define VSAOPT_ROWS_PER_BLOCK (VSAOPT_BLOCK / VSAOPT_LANES)
#define VSAOPT_FULL_MASK 0xFFFFFFFFu
#define VSAOPT_ABS_MASK 0x7FFFFFFFu

struct vsaopt_u32x4 {
    u32 w[4];
};

// One Philox round: hi:lo = M0*c0, hi:lo = M1*c2 (64-bit products).
__device__ __forceinline__ void vsaopt_philox_round(u32& c0, u32& c1, u32& c2, u32& c3, u32 k0, u32 k1) {
    const u32 hi0 = __umulhi(VSAOPT_PHILOX_M0, c0);
    const u32 lo0 = VSAOPT_PHILOX_M0 * c0;
    const u32 hi1 = __umulhi(VSAOPT_PHILOX_M1, c2);
    const u32 lo1 = VSAOPT_PHILOX_M1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
}

// Philox4x32-R of one counter: keys advance by the Weyl increments before every round but the first.
__device__ __forceinline__ vsaopt_u32x4 vsaopt_philox(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1, int rounds) {
    for (int r = 0; r < rounds; ++r) {
        if (r) {
            k0 += VSAOPT_PHILOX_W0;
            k1 += VSAOPT_PHILOX_W1;
        }
        vsaopt_philox_round(c0, c1, c2, c3, k0, k1);
    }
    vsaopt_u32x4 out;
    out.w[0] = c0;
    out.w[1] = c1;
    out.w[2] = c2;
    out.w[3] = c3;
    return out;
}

// The spec's draw: block `b` of the counter (b, tensor, step, stream) under key (seed lo, seed hi), 10 rounds.
// Element i of a draw is word i % 4 of block i / 4 (the block index is the low 32 bits; i < 2^34).
struct vsaopt_draw {
    u32 k0, k1, tensor, step, stream;
};

__device__ __forceinline__ vsaopt_u32x4 vsaopt_draw_block(const vsaopt_draw& d, u64 b) {
    return vsaopt_philox((u32)b, d.tensor, d.step, d.stream, d.k0, d.k1, 10);
}

// Word of a draw selected by a warp-uniform index q (0..3) without local-memory indexing.
__device__ __forceinline__ u32 vsaopt_word(const vsaopt_u32x4& v, int q) {
    return q == 0 ? v.w[0] : q == 1 ? v.w[1] : q == 2 ? v.w[2] : v.w[3];
}

// Lane fold of spec section 3, step 3: for h = 16, 8, 4, 2, 1, lane l < h computes p[l] + p[l + h].
// shfl_down gives lane l the value of lane l + h; lane 0 ends with the block sum.  All 32 lanes must call it.
__device__ __forceinline__ double vsaopt_warp_fold(double p) {
    for (int h = VSAOPT_LANES / 2; h > 0; h >>= 1) {
        const double q = __shfl_down_sync(VSAOPT_FULL_MASK, p, h);
        p = __dadd_rn(p, q);
    }
    return p;
}

// Lane l's part of spec section 3, step 2, for the block starting at `start` (elements before `end`):
// p = +0.0; p = p + term(start + 32m + l) for m = 0, 1, ... in order.  A full block takes an unguarded,
// unrolled loop (the loads can be issued ahead; the dependent adds keep their order); the partial
// last block skips absent elements (adding +0.0 to a lane, never -0.0, would change nothing).
template <typename Term>
__device__ __forceinline__ double vsaopt_lane_sum(u64 start, u64 end, int lane, Term term) {
    double p = 0.0;
    const u64 base = start + lane;
    if (start + VSAOPT_BLOCK <= end) {
#pragma unroll 8
        for (int m = 0; m < VSAOPT_ROWS_PER_BLOCK; ++m) p = __dadd_rn(p, term(base + (u64)VSAOPT_LANES * m));
    } else {
        for (int m = 0; m < VSAOPT_ROWS_PER_BLOCK; ++m) {
            const u64 i = base + (u64)VSAOPT_LANES * m;
            if (i < end) p = __dadd_rn(p, term(i));
        }
    }
    return p;
}

// Exact integer warp sum (order does not matter).
__device__ __forceinline__ i64 vsaopt_warp_sum_i64(i64 v) {
    for (int h = VSAOPT_LANES / 2; h > 0; h >>= 1) v += __shfl_down_sync(VSAOPT_FULL_MASK, v, h);
    return v;
}

__device__ __forceinline__ u32 vsaopt_warp_max_u32(u32 v) {
    for (int h = VSAOPT_LANES / 2; h > 0; h >>= 1) v = max(v, __shfl_down_sync(VSAOPT_FULL_MASK, v, h));
    return v;
}

// Global index and stride of a grid-stride loop (64-bit: inputs may hold up to 2^34 elements).
__device__ __forceinline__ u64 vsaopt_tid() { return (u64)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 vsaopt_nthreads() { return (u64)gridDim.x * blockDim.x; }
// Warp index and warp count of a warp-stride loop.
__device__ __forceinline__ u64 vsaopt_warp_id() { return vsaopt_tid() / VSAOPT_LANES; }
__device__ __forceinline__ u64 vsaopt_nwarps() { return vsaopt_nthreads() / VSAOPT_LANES; }
__device__ __forceinline__ int vsaopt_lane() { return (int)(threadIdx.x & (VSAOPT_LANES - 1)); }

// Whether `p` is aligned to `bytes` (vector loads and stores need it; views may be offset).
__device__ __forceinline__ bool vsaopt_aligned(const void* p, unsigned bytes) { return ((u64)p & (bytes - 1)) == 0; }

// Four int8 values at once (the address must be 4-byte aligned).
__device__ __forceinline__ char4 vsaopt_load_char4(const signed char* p) { return *reinterpret_cast<const char4*>(p); }
__device__ __forceinline__ void vsaopt_store_char4(signed char* p, int a, int b, int c, int d) {
    char4 v;
    v.x = (signed char)a;
    v.y = (signed char)b;
    v.z = (signed char)c;
    v.w = (signed char)d;
    *reinterpret_cast<char4*>(p) = v;
}

// sign(x) of a float as an int8 value: +1, -1, or 0 for +-0 and NaN.
__device__ __forceinline__ int vsaopt_sign(float v) { return (v > 0.0f) - (v < 0.0f); }
